"""Plugin discovery: twisted.plugin finds providers, we check them and select one by name."""
from __future__ import annotations

from twisted.plugin import getPlugins
from zope.interface.verify import verifyObject

from . import plugins as plugin_package


class PluginError(Exception):
    """A configured plugin is missing, broken, or named twice."""


def discover(interface) -> dict[str, object]:
    """Return ``{name: provider}`` of every valid provider of ``interface``."""
    found: dict[str, object] = {}
    for provider in getPlugins(interface, plugin_package):
        try:
            verifyObject(interface, provider)
        except Exception as e:  # a broken dropin must name itself
            raise PluginError(f"plugin {provider!r} does not provide {interface.__name__}: {e}") from None
        name = provider.name
        if name in found and found[name] is not provider:
            raise PluginError(f"two {interface.__name__} plugins are named {name!r}")
        found[name] = provider
    return found


def select(interface, name: str, key: str):
    """Return the provider of ``interface`` called ``name`` (the value of config ``key``)."""
    available = discover(interface)
    try:
        return available[name]
    except KeyError:
        choices = ", ".join(sorted(available)) or "none"
        raise PluginError(
            f"configuration key {key}: no {interface.__name__} plugin named {name!r} (available: {choices})"
        ) from None
