"""Configuration: Orthanc-style JSON files, validated once before the reactor runs."""

from .load import ConfigError, load_config
from .settings import Settings

__all__ = ["ConfigError", "Settings", "load_config"]
