"""Orthanc's small print: /system, /plugins, default encoding, /tools/now."""
from __future__ import annotations

import re


def test_system_fields(daemon):
    """/system has Orthanc's fields; Version names the Orthanc release, ours is apart."""
    s = daemon.get("/system").json()
    for key in ("Name", "Version", "ApiVersion", "DicomAet", "DicomPort", "HttpPort", "DatabaseVersion",
                "PluginsEnabled", "StorageAreaPlugin", "DatabaseBackendPlugin"):
        assert key in s
    assert re.match(r"^1\.\d+\.\d+$", s["Version"]) and isinstance(s["ApiVersion"], int)
    assert s["HttpPort"] == daemon.port and s["PluginsEnabled"] is True
    assert s["DicomwebDaemonVersion"] != s["Version"]


def test_plugins_describe_dicomweb(daemon):
    """/plugins lists dicom-web, described like Orthanc's DICOMweb plugin; unknown plugins are 404."""
    assert daemon.get("/plugins").json() == ["dicom-web"]
    info = daemon.get("/plugins/dicom-web").json()
    assert info["ID"] == "dicom-web" and info["Version"]
    assert daemon.get("/plugins/nope").status_code == 404


def test_default_encoding_roundtrip(daemon):
    """GET|PUT /tools/default-encoding reads and changes the default encoding; a bad one is 400."""
    assert daemon.get("/tools/default-encoding").text == "Latin1"
    put = daemon.put("/tools/default-encoding", b"Utf8")
    assert put.status_code == 200 and put.text == "Utf8"  # Orthanc answers the encoding now in force
    assert daemon.get("/tools/default-encoding").text == "Utf8"
    assert daemon.put("/tools/default-encoding", b"Klingon").status_code == 400
    daemon.put("/tools/default-encoding", b"Latin1")


def test_now(daemon):
    """/tools/now answers an Orthanc timestamp."""
    assert re.match(r"^\d{8}T\d{6}$", daemon.get("/tools/now").text)
    assert re.match(r"^\d{8}T\d{6}$", daemon.get("/tools/now-local").text)
