"""The configuration: the documented file, validation messages, comments."""
from __future__ import annotations

import pytest

from dicomweb_daemon.config import ConfigError, load_config
from dicomweb_daemon.config.load import strip_comments
from dicomweb_daemon.config.settings import BACKENDS, DICOMWEB, TOP
from tests.conftest import ROOT


def test_documented_config_loads_and_names_every_key():
    """etc/dicomweb.json is valid and mentions every key the daemon reads."""
    text = (ROOT / "etc" / "dicomweb.json").read_text()
    settings = load_config(str(ROOT / "etc" / "dicomweb.json"))
    assert settings.HttpPort == 8042 and settings.StorageDirectory == "dicomweb-data"
    for key in [*TOP, *BACKENDS, *DICOMWEB]:
        assert f'"{key}"' in text, f"{key} is not documented in etc/dicomweb.json"


def test_comments_are_removed_outside_strings_only():
    """// and /* */ are comments, but not inside JSON strings such as URLs."""
    text = '{"Url": "http://host//x", /* c */ "A": 1 // tail\n}'
    assert strip_comments(text).replace(" ", "") == '{"Url":"http://host//x","A":1\n}'


@pytest.mark.parametrize("content, key", [
    ('{"StableAge": 0}', "StableAge"),
    ('{"RegisteredUsers": {"alice": 3}}', "RegisteredUsers.alice"),
    ('{"DicomWeb": {"Root": "dicom-web"}}', "DicomWeb.Root"),
    ('{"DefaultEncoding": "Klingon"}', "DefaultEncoding"),
    ('{"Backends": []}', "Backends"),
])
def test_errors_name_the_key_path(tmp_path, content, key):
    """Each invalid value is refused with its key path in the message."""
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as e:
        load_config(str(path))
    assert key in str(e.value)


def test_orthanc_aliases_and_lua_keys():
    """Orthanc's SyncStorageArea sets SyncWrites (ours wins when both are given); Lua keys, out of
    scope, are ignored with one warning line for all of them."""
    from dicomweb_daemon.config.settings import validate

    settings, unknown = validate({"SyncStorageArea": False, "ExecuteLuaEnabled": True, "LuaScripts": ["a.lua"]})
    assert settings.SyncWrites is False
    assert unknown == ["ExecuteLuaEnabled, LuaScripts (Lua scripting is not supported)"]
    settings, _ = validate({"SyncStorageArea": False, "SyncWrites": True})
    assert settings.SyncWrites is True


def test_an_orthanc_configuration_selects_its_plugins_backends():
    """Orthanc loads a plugin whose section is there; we select the backend it stands for, unless
    Backends says otherwise."""
    from dicomweb_daemon.config.settings import validate

    settings, unknown = validate({"PostgreSQL": {"EnableIndex": True, "Host": "db"},
                                  "AwsS3Storage": {"BucketName": "pacs"}})
    assert settings.backends == {"Index": "postgresql", "Storage": "s3"} and not unknown
    assert validate({"AzureBlobStorage": {}})[0].backends["Storage"] == "azure"
    assert validate({"PostgreSQL": {"EnableIndex": False}})[0].backends["Index"] == "sqlite"
    explicit = validate({"Backends": {"Storage": "filesystem"}, "AwsS3Storage": {"BucketName": "pacs"}})[0]
    assert explicit.backends["Storage"] == "filesystem"
