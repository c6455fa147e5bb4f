"""The DICOMweb client and Orthanc peers against a real Orthanc with its DICOMweb plugin (Debian
packages ``orthanc`` and ``orthanc-dicomweb``, which CI installs): our STOW-RS to Orthanc, our
WADO-RS retrieve from Orthanc, Orthanc's own DICOMweb client retrieving from us and sending to us,
and our peer store to Orthanc as is, transcoded and compressed; every file arrives byte for byte
(or, transcoded, in the syntax asked with the same pixels), under the same Orthanc identifiers."""
from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
from pydicom.uid import generate_uid

from tests.conftest import free_port, wait_job
from tests.dicom_files import CT_SMALL, MR_SMALL, RGB_JPEG, make_ct

ORTHANC = shutil.which("Orthanc") or next((p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if Path(p).exists()),
                                          None)
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
EXPLICIT_LE = "1.2.840.10008.1.2.1"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"


class Orthanc:
    """A running Orthanc: its REST API on a loopback port."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port, self.dicom_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "orthanc.log"
        config = {"Name": "TestOrthanc", "HttpPort": self.port, "DicomPort": self.dicom_port,
                  "DicomAet": "TESTORTHANC", "StorageDirectory": str(folder / "storage"),
                  "IndexDirectory": str(folder / "index"), "Plugins": [str(DICOMWEB_PLUGIN)],
                  "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "HttpTimeout": 60,
                  "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
        self.config_path = folder / "orthanc.json"
        self.config_path.write_text(json.dumps(config))
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([ORTHANC, str(self.config_path)], cwd=folder, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited ({self.proc.returncode}):\n{self.log_path.read_text()}")
            try:
                if requests.get(self.url + "/system", timeout=2).status_code == 200:
                    plugins = requests.get(self.url + "/plugins", timeout=5).json()
                    assert "dicom-web" in plugins, f"Orthanc did not load {DICOMWEB_PLUGIN}: {plugins}"
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"Orthanc did not answer in time:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, timeout=120, **kw)

    def post(self, path: str, data=None, **kw) -> requests.Response:
        return requests.post(self.url + path, data=data, timeout=120, **kw)

    def put(self, path: str, data=None, **kw) -> requests.Response:
        return requests.put(self.url + path, data=data, timeout=120, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return requests.delete(self.url + path, timeout=120, **kw)

    def store(self, data: bytes) -> dict:
        r = self.post("/instances", data)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    """One real Orthanc with the DICOMweb plugin for the module (its own storage and index)."""
    if ORTHANC is None or not DICOMWEB_PLUGIN.exists():
        pytest.fail("these tests need a real Orthanc: the Debian packages 'orthanc' and 'orthanc-dicomweb' "
                    f"(binary 'Orthanc' on PATH: {ORTHANC or 'absent'}; plugin {DICOMWEB_PLUGIN}: "
                    f"{'present' if DICOMWEB_PLUGIN.exists() else 'absent'}). "
                    "`apt-get install orthanc orthanc-dicomweb` (.ci/run does so when run as root).",
                    pytrace=False)
    server = Orthanc(tmp_path_factory.mktemp("orthanc"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _study(count: int, patient_id: str) -> tuple[str, list[bytes]]:
    """A study of one CT series of ``count`` instances, with UIDs of its own."""
    study, series = generate_uid(), generate_uid()
    return study, [make_ct(patient_id=patient_id, study_uid=study, series_uid=series, instance_number=i)
                   for i in range(1, count + 1)]


def _absent_from(server, public_ids) -> None:
    """Make sure none of ``public_ids`` is on ``server`` (files of pydicom's test data are shared by tests)."""
    for public_id in public_ids:
        server.delete(f"/instances/{public_id}")
        assert server.get(f"/instances/{public_id}").status_code == 404



def _file(server, public_id: str) -> bytes:
    r = server.get(f"/instances/{public_id}/file")
    assert r.status_code == 200, (server.url, public_id, r.text)
    return r.content


def _transfer_syntax(orthanc: Orthanc, public_id: str) -> str:
    r = orthanc.get(f"/instances/{public_id}/metadata/TransferSyntax")
    assert r.status_code == 200, r.text
    return r.text.strip()


def _pixels(data: bytes) -> np.ndarray:
    return pydicom.dcmread(io.BytesIO(data)).pixel_array


def test_our_stow_to_orthanc_is_byte_exact(make_daemon, orthanc):
    """STOW-RS of a study, a series and an instance from our daemon to Orthanc's DICOMweb plugin: Orthanc
    holds the very files, under the same identifiers; as a job too."""
    d = make_daemon({"DicomWeb": {"Servers": {"orthanc": [f"{orthanc.url}/dicom-web/"]}}})
    study_uid, files = _study(4, "O-STOW")
    stored = [d.store(data) for data in files]
    study = stored[0]["ParentStudy"]
    ct, mr = d.store(CT_SMALL), d.store(MR_SMALL)
    ids = [s["ID"] for s in stored] + [ct["ID"], mr["ID"]]
    _absent_from(orthanc, ids)

    r = d.post("/dicom-web/servers/orthanc/stow", json={"Resources": [study, ct["ParentSeries"], mr["ID"]]})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["Server"] == "orthanc" and answer["InstancesCount"] == "6"
    assert answer["Resources"]["Studies"] == [study] and answer["Resources"]["Series"] == [ct["ParentSeries"]]
    assert sorted(answer["Resources"]["Instances"]) == sorted(ids)
    for public_id in ids:
        assert _file(orthanc, public_id) == _file(d, public_id), public_id
    assert [s["0020000D"]["Value"][0] for s in
            orthanc.get("/dicom-web/studies", params={"PatientID": "O-STOW"}).json()] == [study_uid]

    _absent_from(orthanc, [mr["ID"]])
    r = d.post("/dicom-web/servers/orthanc/stow", json={"Resources": [mr["ID"]], "Synchronous": False})
    assert r.status_code == 200 and set(r.json()) == {"ID", "Path"}, r.text
    job = wait_job(d, r.json()["ID"])
    assert job["State"] == "Success", job
    assert _file(orthanc, mr["ID"]) == _file(d, mr["ID"])


def test_our_retrieve_from_orthanc_is_byte_exact(make_daemon, orthanc):
    """WADO-RS retrieve from Orthanc of a study, a series and an instance: our daemon stores Orthanc's
    files byte for byte (a JPEG file as compressed as it was), under Orthanc's identifiers."""
    study_uid, files = _study(3, "O-RETRIEVE")
    series_uid = pydicom.dcmread(io.BytesIO(files[0])).SeriesInstanceUID
    ids = [orthanc.store(data)["ID"] for data in files]
    jpeg = orthanc.store(Path(RGB_JPEG).read_bytes())
    jpeg_ds = pydicom.dcmread(RGB_JPEG)
    mr_ds = pydicom.dcmread(MR_SMALL)
    mr = orthanc.store(Path(MR_SMALL).read_bytes())
    d = make_daemon({"DicomWeb": {"Servers": {"orthanc": {"Url": f"{orthanc.url}/dicom-web/"}}}})

    r = d.post("/dicom-web/servers/orthanc/retrieve", json={"Resources": [
        {"Study": study_uid}, {"Study": jpeg_ds.StudyInstanceUID, "Series": jpeg_ds.SeriesInstanceUID}]})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["ReceivedInstancesCount"] == "4" and answer["FailedInstancesCount"] == 0
    assert sorted(answer["Instances"]) == sorted(ids + [jpeg["ID"]])
    for public_id in ids + [jpeg["ID"]]:
        assert _file(d, public_id) == _file(orthanc, public_id), public_id
    assert d.get(f"/instances/{jpeg['ID']}/metadata/TransferSyntax").text == jpeg_ds.file_meta.TransferSyntaxUID

    r = d.post("/dicom-web/servers/orthanc/retrieve", json={"Resources": [
        {"Study": mr_ds.StudyInstanceUID, "Series": mr_ds.SeriesInstanceUID, "Instance": mr_ds.SOPInstanceUID}],
        "Synchronous": False})
    job = wait_job(d, r.json()["ID"])
    assert job["State"] == "Success", job
    assert job["Content"]["Instances"] == [mr["ID"]]
    assert _file(d, mr["ID"]) == _file(orthanc, mr["ID"])
    series = d.get(f"/instances/{ids[0]}").json()["ParentSeries"]
    assert d.get(f"/series/{series}").json()["MainDicomTags"]["SeriesInstanceUID"] == series_uid
    assert sorted(d.get(f"/series/{series}").json()["Instances"]) == sorted(ids)


def test_orthancs_dicomweb_client_retrieves_from_us_and_stows_to_us(make_daemon, orthanc):
    """Orthanc's own DICOMweb client, pointed at our DICOMweb root, finds our studies (QIDO-RS),
    retrieves them (WADO-RS) byte for byte, and sends us its own (STOW-RS) byte for byte."""
    d = make_daemon()
    study_uid, files = _study(3, "FROM-US")
    ids = [d.store(data)["ID"] for data in files]
    jpeg = d.store(Path(RGB_JPEG).read_bytes())
    jpeg_ds = pydicom.dcmread(RGB_JPEG)
    _absent_from(orthanc, ids + [jpeg["ID"]])
    r = orthanc.put("/dicom-web/servers/ours", json={"Url": f"{d.url}/dicom-web/"})
    assert r.status_code == 200, r.text

    r = orthanc.post("/dicom-web/servers/ours/qido", json={"Uri": "/studies", "Arguments": {"PatientID": "FROM-US"}})
    assert r.status_code == 200, r.text
    assert [s["0020000D"]["Value"] for s in r.json()] == [study_uid]  # Orthanc's rewriting of our DICOM JSON
    r = orthanc.post("/dicom-web/servers/ours/get", json={"Uri": "/studies", "Arguments": {"PatientID": "FROM-US"}})
    assert r.status_code == 200 and r.json() == d.get("/dicom-web/studies", params={"PatientID": "FROM-US"}).json()

    r = orthanc.post("/dicom-web/servers/ours/retrieve", json={"Resources": [
        {"Study": study_uid}, {"Study": jpeg_ds.StudyInstanceUID}]})
    assert r.status_code == 200, r.text
    assert r.json()["ReceivedInstancesCount"] == "4", r.json()
    for public_id in ids + [jpeg["ID"]]:
        assert _file(orthanc, public_id) == _file(d, public_id), public_id
    assert _transfer_syntax(orthanc, jpeg["ID"]) == jpeg_ds.file_meta.TransferSyntaxUID

    # The other way: Orthanc's STOW-RS client sends a series of its own to us.
    other_uid, other_files = _study(2, "TO-US")
    other = [orthanc.store(data) for data in other_files]
    r = orthanc.post("/dicom-web/servers/ours/stow", json={"Resources": [other[0]["ParentStudy"]]})
    assert r.status_code == 200 and r.json()["InstancesCount"] == "2", r.text
    for item in other:
        assert _file(d, item["ID"]) == _file(orthanc, item["ID"]), item["ID"]
    assert d.get(f"/studies/{other[0]['ParentStudy']}").json()["MainDicomTags"]["StudyInstanceUID"] == other_uid


def test_our_peer_store_to_orthanc_as_is_transcoded_and_compressed(make_daemon, orthanc):
    """Peer store to Orthanc's REST API: as stored (byte for byte), transcoded to explicit VR little
    endian or JPEG lossless (Orthanc records that syntax; the pixels are the same), gzip-compressed,
    and as a job; ``/peers/orthanc/system`` is Orthanc's ``/system``."""
    d = make_daemon({"OrthancPeers": {"orthanc": [f"{orthanc.url}/"]}})
    _, files = _study(2, "PEER")
    plain = [d.store(data)["ID"] for data in files]
    ct, jpeg = d.store(CT_SMALL)["ID"], d.store(Path(RGB_JPEG).read_bytes())["ID"]

    _absent_from(orthanc, plain + [ct, jpeg])
    r = d.post("/peers/orthanc/store", data=plain[0])  # one ID as text
    assert r.status_code == 200, r.text
    assert r.json()["InstancesCount"] == 1 and r.json()["FailedInstancesCount"] == 0
    r = d.post("/peers/orthanc/store", json=[plain[1], jpeg])  # a list
    assert r.status_code == 200 and r.json()["InstancesCount"] == 2, r.text
    for public_id in plain + [jpeg]:
        assert _file(orthanc, public_id) == _file(d, public_id), public_id
    assert _transfer_syntax(orthanc, jpeg) == JPEG_LOSSLESS_SV1

    # Transcoded on the way: what Orthanc holds is in the syntax asked, with the same pixels.
    for public_id, target in ((jpeg, EXPLICIT_LE), (ct, JPEG_LOSSLESS_SV1), (plain[0], JPEG_LOSSLESS_SV1)):
        _absent_from(orthanc, [public_id])
        r = d.post("/peers/orthanc/store", json={"Resources": [public_id], "Transcode": target})
        assert r.status_code == 200, r.text
        assert r.json()["InstancesCount"] == 1 and r.json()["Transcode"] == target
        assert _transfer_syntax(orthanc, public_id) == target, (public_id, target)
        theirs, ours = _file(orthanc, public_id), _file(d, public_id)
        assert pydicom.dcmread(io.BytesIO(theirs)).file_meta.TransferSyntaxUID == target
        assert np.array_equal(_pixels(theirs), _pixels(ours)), (public_id, target)
        assert d.get(f"/instances/{public_id}/file").content == ours  # our stored file is untouched

    # Compressed on the way (Content-Encoding: gzip), and as a job.
    _absent_from(orthanc, [ct, plain[1]])
    r = d.post("/peers/orthanc/store", json={"Resources": [ct], "Compress": True})
    assert r.status_code == 200 and r.json()["Compress"] is True, r.text
    assert _file(orthanc, ct) == _file(d, ct)
    r = d.post("/peers/orthanc/store", json={"Resources": [plain[1]], "Synchronous": False})
    job = wait_job(d, r.json()["ID"])
    assert job["State"] == "Success" and job["Content"]["InstancesCount"] == 1, job
    assert _file(orthanc, plain[1]) == _file(d, plain[1])

    r = d.get("/peers/orthanc/system")
    assert r.status_code == 200, r.text
    assert r.json() == orthanc.get("/system").json()
    assert r.json()["Name"] == "TestOrthanc" and r.json()["DicomPort"] == orthanc.dicom_port
