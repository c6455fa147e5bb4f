"""Read Orthanc-style configuration: JSON with comments and ``${ENV}``, a file or a folder."""
from __future__ import annotations

import json
import os
import pathlib
import re
from typing import Any

from twisted.logger import Logger

from .settings import Settings, validate

log = Logger()


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key path or the file."""


_COMMENT = re.compile(
    r'"(?:\\.|[^"\\])*"'  # a JSON string: kept as is
    r"|//[^\n]*"  # a line comment
    r"|/\*.*?\*/",  # a block comment
    re.DOTALL,
)
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def strip_comments(text: str) -> str:
    """Remove // and /* */ comments outside JSON strings (Orthanc accepts both)."""
    return _COMMENT.sub(lambda m: m.group(0) if m.group(0).startswith('"') else " ", text)


def _expand_env(value: Any) -> Any:
    if isinstance(value, str):
        return _ENV.sub(lambda m: os.environ.get(m.group(1), ""), value)
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    return value


def read_json_file(path: pathlib.Path) -> dict:
    try:
        data = json.loads(strip_comments(path.read_text(encoding="utf-8")))
    except OSError as e:
        raise ConfigError(f"cannot read configuration file {path}: {e.strerror}") from None
    except ValueError as e:
        raise ConfigError(f"configuration file {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"configuration file {path} must hold a JSON object")
    return _expand_env(data)


def load_config(path: str | None) -> Settings:
    """Load a file, or every ``*.json`` of a folder merged (later files win per top-level key)."""
    raw: dict = {}
    if path:
        p = pathlib.Path(path)
        if p.is_dir():
            files = sorted(p.glob("*.json"))
            if not files:
                raise ConfigError(f"configuration folder {p} holds no *.json file")
        elif p.exists():
            files = [p]
        else:
            raise ConfigError(f"configuration path {p} does not exist")
        for f in files:
            raw.update(read_json_file(f))
    try:
        settings, unknown = validate(raw)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    for key in unknown:
        log.warn("unknown configuration key {key} is ignored", key=key)
    return settings
