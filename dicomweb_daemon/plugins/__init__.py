"""Plugin package: built-in providers live here as dropins, and so can a site's own.

Like ``twisted.plugins``, every ``dicomweb_daemon/plugins`` folder on ``sys.path`` is searched, and
so is the folder named by the environment variable ``DICOMWEB_PLUGIN_PATH``.
"""
import os

from twisted.plugin import pluginPackagePaths

__path__.extend(pluginPackagePaths(__name__))  # noqa: F821
__path__.extend(p for p in os.environ.get("DICOMWEB_PLUGIN_PATH", "").split(os.pathsep) if p)  # noqa: F821
__all__: list = []
