"""Start-up, configuration, plugins, security and durability of the daemon process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
import requests

from tests.conftest import ROOT, TWISTD, Daemon
from tests.dicom_files import CT_SMALL, make_ct


def run_twistd(tmp_path, config: dict | None = None, extra: list[str] | None = None, env=None):
    """Run twistd until it exits (it should fail) and return (exit code, output)."""
    args = [*TWISTD, "-n", "--pidfile=", "dicomweb"]
    if config is not None:
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(config))
        args += ["--config", str(path)]
    proc = subprocess.run(args + (extra or []), cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **(env or {})))
    return proc.returncode, proc.stdout + proc.stderr


def test_defaults_listen_on_loopback_8042_with_data_folder(tmp_path):
    """With no options: 127.0.0.1:8042, SQLite and files under ./dicomweb-data."""
    try:
        requests.get("http://127.0.0.1:8042/system", timeout=0.5)
        pytest.skip("port 8042 is taken on this machine")
    except requests.ConnectionError:
        pass
    proc = subprocess.Popen([*TWISTD, "-n", "--pidfile=", "dicomweb"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                r = requests.post("http://127.0.0.1:8042/instances", data=open(CT_SMALL, "rb").read(), timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert r.status_code == 200
        assert (tmp_path / "dicomweb-data" / "index.sqlite").exists()
        system = requests.get("http://127.0.0.1:8042/system", timeout=5).json()
        assert system["HttpPort"] == 8042 and system["Version"].startswith("1.")
        assert system["DicomwebDaemonVersion"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_config_errors_name_the_key(tmp_path):
    """A wrong type or value stops start-up with a message naming the key path."""
    code, out = run_twistd(tmp_path, {"HttpPort": "eighty"})
    assert code != 0 and "HttpPort" in out and "int" in out
    code, out = run_twistd(tmp_path, {"DicomWeb": {"StudiesMetadata": "Everything"}})
    assert code != 0 and "DicomWeb.StudiesMetadata" in out
    code, out = run_twistd(tmp_path, {"RemoteAccessAllowed": True})
    assert code != 0 and "RegisteredUsers" in out
    (tmp_path / "broken.json").write_text("{ nope")
    code, out = run_twistd(tmp_path, None, ["--config", str(tmp_path / "broken.json")])
    assert code != 0 and "not valid JSON" in out


def test_misspelt_plugin_stops_startup(tmp_path):
    """A storage plugin name nobody provides stops start-up, listing what is available."""
    code, out = run_twistd(tmp_path, {"Backends": {"Storage": "filesystme"}})
    assert code != 0 and "Backends.Storage" in out and "filesystem" in out


def test_config_folder_comments_env_and_unknown_keys(tmp_path, monkeypatch):
    """A folder of *.json files with comments is merged, ${ENV} expanded, unknown keys warned about."""
    folder = tmp_path / "conf"
    folder.mkdir()
    d = Daemon(tmp_path)
    (folder / "1.json").write_text(textwrap.dedent(f"""
        {{
          // the port
          "HttpPort": {d.port}, /* block comment */
          "StorageDirectory": "{d.data}",
          "Name": "${{DICOMWEB_TEST_NAME}}",
          "SomethingUnknown": 3
        }}"""))
    (folder / "2.json").write_text('{"DicomAet": "SECOND"}')
    d.config_path = folder
    d.env["DICOMWEB_TEST_NAME"] = "from-env"
    d.start()
    try:
        system = d.get("/system").json()
        assert system["Name"] == "from-env" and system["DicomAet"] == "SECOND"
        assert "SomethingUnknown" in d.log_path.read_text()
    finally:
        d.stop()


def storage_plugin(folder, name: str, methods: str) -> dict:
    """Write a dropin storage plugin called ``name`` into ``folder``: a FilesystemStorage with
    ``methods`` added that provides IStorageArea only (none of the optional capabilities, so ingest
    gives it every file by path); return the environment that puts it on the daemon's plugin path."""
    folder.mkdir()
    body = textwrap.indent(textwrap.dedent(methods), "    ")
    (folder / f"{name}_storage.py").write_text(
        "import os\n"
        "from twisted.plugin import IPlugin\n"
        "from zope.interface import implementer_only\n"
        "from dicomweb_daemon.interfaces import IStorageArea\n"
        "from dicomweb_daemon.storage.filesystem import FilesystemStorage\n\n\n"
        "@implementer_only(IPlugin, IStorageArea)\n"
        "class SiteStorage(FilesystemStorage):\n"
        f"    name = {name!r}\n\n"
        "    def open(self, settings):\n"
        "        storage = SiteStorage(os.path.abspath(settings.StorageDirectory))\n"
        "        storage.tmp.mkdir(parents=True, exist_ok=True)\n"
        "        return storage\n\n"
        f"{body}\n\n"
        f"{name} = SiteStorage()\n")
    return {"DICOMWEB_PLUGIN_PATH": str(folder)}


def test_custom_storage_plugin_is_discovered_and_used(make_daemon, tmp_path):
    """A dropin providing IStorageArea, selected by name, receives the stored files."""
    env = storage_plugin(tmp_path / "site-plugins", "recording", """
        def create(self, uuid, kind, source_path):
            super().create(uuid, kind, source_path)
            with open(self.root / "created.log", "a") as f:
                f.write(uuid + "\\n")
    """)
    d = make_daemon({"Backends": {"Storage": "recording"}}, env=env)
    answer = d.store(CT_SMALL)
    uuid = d.get(f"/instances/{answer['ID']}").json()["FileUuid"]
    assert (d.data / "created.log").read_text().split() == [uuid]
    assert d.get("/system").json()["StorageAreaPlugin"] == "recording"


def test_authentication_challenges_and_accepts(make_daemon):
    """With AuthenticationEnabled every route answers 401 with a Basic challenge until credentials come."""
    d = make_daemon({"AuthenticationEnabled": True, "RegisteredUsers": {"alice": "s3cret"}})
    for path in ("/system", "/patients", "/no/such/route"):
        r = requests.get(d.url + path, timeout=5)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
        assert r.json()["HttpStatus"] == 401
    assert requests.get(d.url + "/system", auth=("alice", "wrong"), timeout=5).status_code == 401
    assert requests.get(d.url + "/system", auth=("alice", "s3cret"), timeout=5).status_code == 200
    r = requests.post(d.url + "/instances", data=make_ct("AUTH-1"), auth=("alice", "s3cret"), timeout=5)
    assert r.status_code == 200


@pytest.mark.parametrize("sync", [True, False])
def test_acknowledged_store_survives_kill_9(make_daemon, sync):
    """A file acknowledged with 200 is there after kill -9 and a restart, file and index (fsync or not)."""
    d = make_daemon({"SyncWrites": sync})
    answers = [d.store(make_ct(f"K9-{i}")) for i in range(5)]
    d.kill9()
    d.start()
    for a in answers:
        assert d.get(f"/instances/{a['ID']}").status_code == 200
        assert d.get(f"/instances/{a['ID']}/file").content[128:132] == b"DICM"
    assert d.get("/statistics").json()["CountInstances"] == 5


@pytest.mark.parametrize("sync", [True, False])
def test_acknowledged_stow_survives_kill_9(make_daemon, sync):
    """Instances acknowledged by a STOW-RS answer are there after kill -9 and a restart: small parts
    (written from memory) and big ones (written around the page cache from the shared request body)."""
    d = make_daemon({"SyncWrites": sync, "IngestWorkers": 2})
    files = [make_ct(f"K9S-{i}", size=300 if i % 4 == 0 else 64) for i in range(12)]
    body = b"".join(b"--k9\r\nContent-Type: application/dicom\r\n\r\n" + f + b"\r\n" for f in files) + b"--k9--\r\n"
    r = requests.post(d.url + "/dicom-web/studies", data=body, timeout=30,
                      headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=k9'})
    assert r.status_code == 200 and len(r.json()["00081199"]["Value"]) == 12
    d.kill9()
    d.start()
    assert d.get("/statistics").json()["CountInstances"] == 12
    stored = {d.get(f"/instances/{i}/file").content for i in d.get("/instances").json()}
    assert stored == set(files)


def test_twistd_help_lists_options():
    """twistd dicomweb --help lists the daemon's options."""
    out = subprocess.run([*TWISTD, "dicomweb", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "--config" in out.stdout and "--port" in out.stdout
    assert sys.executable


def _external_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_remote_access_is_off_by_default(make_daemon):
    """By default only loopback answers; RemoteAccessAllowed opens the other interfaces (with users)."""
    address = _external_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to test from")
    closed = make_daemon()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{address}:{closed.port}/system", timeout=5)
    opened = make_daemon({"RemoteAccessAllowed": True, "RegisteredUsers": {"bob": "pw"}})
    r = requests.get(f"http://{address}:{opened.port}/system", timeout=5)
    assert r.status_code == 401  # authentication is on by default with remote access
    assert requests.get(f"http://{address}:{opened.port}/system", auth=("bob", "pw"), timeout=5).status_code == 200


def test_access_log_has_no_query_strings(make_daemon):
    """QIDO-style query strings (patient names) do not reach the access log (HttpAccessLog)."""
    d = make_daemon({"HttpAccessLog": True})
    d.get("/patients?PatientName=SECRET^NAME&limit=1")
    d.stop()
    log = d.log_path.read_text()
    assert "GET /patients HTTP/1.1" in log and "SECRET" not in log


def test_no_access_log_by_default_unless_http_is_verbose(make_daemon):
    """As Orthanc: no line per request at the default log level; the http category at verbose
    (/tools/log-level-http) writes them."""
    d = make_daemon()
    d.get("/system")
    assert d.put("/tools/log-level-http", "verbose").status_code == 200
    d.get("/statistics")
    d.stop()
    log = d.log_path.read_text()
    assert "GET /system HTTP/1.1" not in log and "GET /statistics HTTP/1.1" in log


def test_storage_without_local_paths_serves_everything(make_daemon, tmp_path):
    """A storage plugin that gives no file paths (an object store, say) still serves files, tags,
    archives, media, DICOMweb retrieve and frames, through its read methods."""
    import io
    import zipfile

    env = storage_plugin(tmp_path / "opaque-plugins", "opaque", """
        def path(self, uuid, kind):
            return None  # like an object store: bytes only through read / read_range
    """)
    d = make_daemon({"Backends": {"Storage": "opaque"}}, env=env)
    original = open(CT_SMALL, "rb").read()
    a = d.store(CT_SMALL)
    assert d.get(f"/instances/{a['ID']}/file").content == original
    assert d.get(f"/instances/{a['ID']}/tags?simplify").json()["PatientID"] == "1CT1"
    z = zipfile.ZipFile(io.BytesIO(d.get(f"/studies/{a['ParentStudy']}/archive").content))
    assert [z.read(n) for n in z.namelist()] == [original]
    assert "DICOMDIR" in zipfile.ZipFile(io.BytesIO(d.get(f"/studies/{a['ParentStudy']}/media").content)).namelist()
    uids = "/dicom-web/studies/1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
    r = d.get(uids, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
    assert r.status_code == 200 and original in r.content
    frame = d.get(uids + "/series/1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322/instances/"
                  "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322/frames/1",
                  headers={"Accept": 'multipart/related; type="application/octet-stream"'})
    assert frame.status_code == 200 and len(frame.content) > 128 * 128 * 2
