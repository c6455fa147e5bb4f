"""The daemon's DICOM server against DCMTK's tools (Debian ``dcmtk``): C-ECHO, C-STORE through the
ingest pipeline, C-FIND from the index, C-MOVE to a known modality and C-GET, byte-exact; Orthanc's
access rules; and bad input (wrong AETs, an association cut in the middle of a C-STORE, many
associations at once) refused or aborted while HTTP keeps answering."""
from __future__ import annotations

import io
import json
import socket
import struct
import subprocess
import time
from pathlib import Path

import pydicom
import pytest

from tests.conftest import free_port
from tests.dcmtk import dataset_bytes, received, same_content, wait_port
from tests.dcmtk import tool as _tool
from tests.dicom_files import CT_SMALL, MR_SMALL, make_ct

pytestmark = pytest.mark.storage  # runs again with the files in an S3 bucket (tests/object_store.py)

STUDY = "1.2.826.0.1.3680043.8.498.77"



def _run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([_tool(args[0]), *args[1:]], capture_output=True, text=True, timeout=60)
    if ok:
        assert done.returncode == 0, done.stderr + done.stdout
    return done




@pytest.fixture
def node(make_daemon, tmp_path):
    """A daemon that knows one modality, "scp" (a DCMTK storescp to start on ``scp_port``)."""
    scp_port = free_port()
    d = make_daemon({"DicomAet": "OURS", "DicomModalities": {"scp": ["STORESCP", "127.0.0.1", scp_port],
                                                             "finder": ["FINDER", "127.0.0.1", free_port()]}})
    d.scp_port = scp_port
    return d


def _store(d, *files: str, calling: str = "STORESCU") -> subprocess.CompletedProcess:
    return _run("storescu", "-aet", calling, "-aec", "OURS", "127.0.0.1", str(d.dicom_port), *files)


def test_echo_store_and_origin(node, tmp_path):
    _run("echoscu", "-aec", "OURS", "127.0.0.1", str(node.dicom_port))
    series = [tmp_path / f"{i}.dcm" for i in range(3)]
    for i, path in enumerate(series):
        path.write_bytes(make_ct(study_uid=STUDY, series_uid=f"{STUDY}.1", sop_uid=f"{STUDY}.1.{i}",
                                 instance_number=i))
    _store(node, *map(str, series), CT_SMALL, MR_SMALL)
    ids = node.get("/instances").json()
    assert len(ids) == 5
    stored = {node.get(f"/instances/{i}/tags?simplify").json()["SOPInstanceUID"]: node.get(f"/instances/{i}/file")
              for i in ids}
    for path in [*map(str, series), CT_SMALL, MR_SMALL]:
        original = Path(path).read_bytes()
        assert same_content(stored[pydicom.dcmread(path).SOPInstanceUID].content, original), path
    metadata = node.get(f"/instances/{ids[0]}/metadata?expand").json()
    assert metadata["Origin"] == "DicomProtocol" and metadata["RemoteAET"] == "STORESCU"
    # Stored again: AlreadyStored is a success for the sender.
    _store(node, CT_SMALL)
    assert len(node.get("/instances").json()) == 5


def test_several_associations_at_once_each_instance_answered(node, tmp_path):
    """Four storescu at once (their C-STOREs are ingested together): every instance stored once with
    its origin, and a file the index refuses (no StudyInstanceUID) is answered with a failure on its
    own association while the others go on."""
    folders = []
    for n in range(4):
        folder = tmp_path / f"q{n}"
        folder.mkdir()
        for i in range(15):
            (folder / f"{i:02d}.dcm").write_bytes(make_ct(patient_id=f"P{n}", study_uid=f"{STUDY}.{n}",
                                                          series_uid=f"{STUDY}.{n}.1",
                                                          sop_uid=f"{STUDY}.{n}.1.{i}", instance_number=i))
        folders.append(folder)
    broken = pydicom.dcmread(io.BytesIO(make_ct(sop_uid=f"{STUDY}.9.9")))
    del broken.StudyInstanceUID  # the index needs it: refused
    broken.save_as(folders[0] / "99-broken.dcm")
    procs = [subprocess.Popen([_tool("storescu"), "-v", "-aet", f"SENDER{n}", "-aec", "OURS", "+sd", "127.0.0.1",
                               str(node.dicom_port), str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for n, folder in enumerate(folders)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs[1:]] == [0, 0, 0], outputs
    after_broken = outputs[0][1].split("99-broken.dcm", 1)[1]
    assert after_broken.split("Received Store Response", 1)[1].startswith(" (Error: CannotUnderstand)")
    ids = node.get("/instances").json()
    assert len(ids) == 60
    senders = {node.get(f"/instances/{i}/metadata/RemoteAET").text for i in ids}
    assert senders == {"SENDER0", "SENDER1", "SENDER2", "SENDER3"}
    for n in range(4):
        [series] = node.post("/tools/lookup", f"{STUDY}.{n}.1").json()
        assert len(node.get(f"/series/{series['ID']}").json()["Instances"]) == 15


def test_find_at_each_level_from_the_index(node, tmp_path):
    for i, (pid, date) in enumerate([("P1", "20200101"), ("P1", "20210101"), ("P2", "20220101")]):
        path = tmp_path / f"{i}.dcm"
        path.write_bytes(make_ct(patient_id=pid, patient_name=f"DOE^{pid}", study_uid=f"{STUDY}.{i}",
                                 series_uid=f"{STUDY}.{i}.1", sop_uid=f"{STUDY}.{i}.1.1", study_date=date))
        _store(node, str(path))

    def find(*keys: str, calling: str = "FINDER") -> list[dict[str, str]]:
        done = _run("findscu", "-v", "-S", "-aet", calling, "-aec", "OURS",
                    *[a for k in keys for a in ("-k", k)], "127.0.0.1", str(node.dicom_port), ok=False)
        answers, current = [], None
        for line in done.stderr.splitlines():
            if "Find Response:" in line and "Pending" in line:
                current = {}
                answers.append(current)
            elif current is not None and line.startswith("I: (") and "[" in line:
                name = line.rsplit(" ", 1)[-1]
                current[name] = line.split("[", 1)[1].split("]", 1)[0].strip()
        return answers

    studies = find("QueryRetrieveLevel=STUDY", "PatientID=P1", "StudyInstanceUID", "StudyDate",
                   "NumberOfStudyRelatedInstances")
    assert sorted(a["StudyDate"] for a in studies) == ["20200101", "20210101"]
    assert all(a["NumberOfStudyRelatedInstances"] == "1" and a["RetrieveAETitle"] == "OURS" for a in studies)
    assert len(find("QueryRetrieveLevel=STUDY", "StudyDate=20201231-", "StudyInstanceUID")) == 2
    assert len(find("QueryRetrieveLevel=STUDY", "PatientName=doe^p*", "StudyInstanceUID")) == 3
    listed = find("QueryRetrieveLevel=STUDY", f"StudyInstanceUID={STUDY}.0\\{STUDY}.2")
    assert sorted(a["StudyInstanceUID"] for a in listed) == [f"{STUDY}.0", f"{STUDY}.2"]
    images = find("QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={STUDY}.1", "SOPInstanceUID")
    assert [a["SOPInstanceUID"] for a in images] == [f"{STUDY}.1.1.1"]
    # An unknown calling AET may not query (DicomAlwaysAllowFind is false).
    assert find("QueryRetrieveLevel=STUDY", "StudyInstanceUID", calling="STRANGER") == []
    # No wildcard in a UID (PS3.4 C.2.2.2.4): refused, nothing answered.
    assert find("QueryRetrieveLevel=STUDY", f"StudyInstanceUID={STUDY}.*") == []


def test_move_and_get_are_byte_exact(node, tmp_path):
    """What reaches a C-MOVE destination or a C-GET requestor is the stored data set, byte for byte."""
    _store(node, CT_SMALL, MR_SMALL)
    originals = {dataset_bytes(node.get(f"/instances/{i}/file").content) for i in node.get("/instances").json()}
    received_dir = tmp_path / "received"
    received_dir.mkdir()
    scp = subprocess.Popen([_tool("storescp"), "-od", str(received_dir), "-aet", "STORESCP", str(node.scp_port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        done = _run("movescu", "-v", "-S", "-aet", "FINDER", "-aem", "STORESCP", "-aec", "OURS",
                    "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=*", "127.0.0.1", str(node.dicom_port))
        assert "Final Move Response (Success)" in done.stderr
    finally:
        scp.terminate()
        scp.wait()
    assert {dataset_bytes(p.read_bytes()) for p in received_dir.iterdir()} == originals

    fetched = tmp_path / "fetched"
    fetched.mkdir()
    _run("getscu", "+B", "-P", "-aet", "FINDER", "-aec", "OURS", "-od", str(fetched), "-k",
         "QueryRetrieveLevel=PATIENT", "-k", "PatientID=*", "127.0.0.1", str(node.dicom_port))
    assert {dataset_bytes(p.read_bytes()) for p in fetched.iterdir()} == originals

    refused = _run("movescu", "-v", "-S", "-aet", "FINDER", "-aem", "NOBODY", "-aec", "OURS",
                   "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=*", "127.0.0.1", str(node.dicom_port),
                   ok=False)
    assert "Refused: MoveDestinationUnknown" in refused.stderr


def test_a_destination_that_goes_away_fails_the_move(node, tmp_path):
    """A storescp that aborts after the first C-STORE request: the C-MOVE ends in failure (every
    sub-operation failed: A702), the job says where it stopped, and the daemon keeps serving."""
    for i in range(3):
        path = tmp_path / f"{i}.dcm"
        path.write_bytes(make_ct(patient_id="GONE", study_uid=f"{STUDY}.5", series_uid=f"{STUDY}.5.1",
                                 sop_uid=f"{STUDY}.5.1.{i}", instance_number=i))
        _store(node, str(path))
    received_dir = tmp_path / "received"
    received_dir.mkdir()
    scp = subprocess.Popen([_tool("storescp"), "--abort-after", "-aet", "STORESCP", "-od", str(received_dir),
                            str(node.scp_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        moved = _run("movescu", "-v", "-S", "-aet", "FINDER", "-aem", "STORESCP", "-aec", "OURS", "-k",
                     "QueryRetrieveLevel=SERIES", "-k", f"SeriesInstanceUID={STUDY}.5.1", "127.0.0.1",
                     str(node.dicom_port), ok=False)
    finally:
        scp.kill()
        scp.wait()
    assert "Final Move Response (Refused: OutOfResourcesSubOperations)" in moved.stderr, moved.stderr  # A702
    [job] = [j for j in node.get("/jobs?expand").json() if j["Content"].get("Description") == "C-MOVE SCP"]
    assert job["State"] == "Failure" and "stopped after 1 of 3" in job["ErrorDetails"]
    assert job["Content"]["FailedInstancesCount"] == 3
    _run("echoscu", "-aec", "OURS", "127.0.0.1", str(node.dicom_port))


def test_move_to_a_destination_taking_implicit_vr_only(node, tmp_path):
    """A destination that takes implicit VR little endian only (storescp +xi): the stored explicit
    VR files are sent converted, their content unchanged, the received files in implicit VR."""
    originals = []
    for i in range(2):
        data = make_ct(patient_id="IMPLICIT", study_uid=f"{STUDY}.6", series_uid=f"{STUDY}.6.1",
                       sop_uid=f"{STUDY}.6.1.{i}", instance_number=i)
        originals.append(data)
        node.store(data)
    received_dir = tmp_path / "received"
    received_dir.mkdir()
    scp = subprocess.Popen([_tool("storescp"), "+xi", "-aet", "STORESCP", "-od", str(received_dir),
                            str(node.scp_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(node.scp_port)
        _run("movescu", "-S", "-aet", "FINDER", "-aem", "STORESCP", "-aec", "OURS", "-k",
             "QueryRetrieveLevel=SERIES", "-k", f"SeriesInstanceUID={STUDY}.6.1", "127.0.0.1", str(node.dicom_port))
        files = received(received_dir, 2)
    finally:
        scp.kill()
        scp.wait()
    assert {pydicom.dcmread(io.BytesIO(f)).file_meta.TransferSyntaxUID for f in files} == {"1.2.840.10008.1.2"}
    assert all(any(same_content(f, o) for o in originals) for f in files)


def test_access_rules(make_daemon):
    d = make_daemon({"DicomAet": "OURS", "DicomCheckCalledAet": True, "DicomAlwaysAllowEcho": False,
                     "DicomAlwaysAllowStore": False, "DicomModalities": {"known": ["KNOWN", "127.0.0.1", 104]}})
    port = str(d.dicom_port)
    assert _run("echoscu", "-aet", "KNOWN", "-aec", "OURS", "127.0.0.1", port, ok=False).returncode == 0
    wrong_called = _run("echoscu", "-aet", "KNOWN", "-aec", "OTHER", "127.0.0.1", port, ok=False)
    assert wrong_called.returncode != 0 and "Rejected" in wrong_called.stderr
    stranger = _run("echoscu", "-aet", "STRANGER", "-aec", "OURS", "127.0.0.1", port, ok=False)
    assert stranger.returncode != 0
    assert _run("storescu", "-aet", "STRANGER", "-aec", "OURS", "127.0.0.1", port, CT_SMALL, ok=False).returncode
    assert d.get("/instances").json() == []
    # A known modality stores; its rights changed over the REST API apply from its next association.
    _run("storescu", "-aet", "KNOWN", "-aec", "OURS", "127.0.0.1", port, CT_SMALL)
    assert len(d.get("/instances").json()) == 1
    d.delete(f"/instances/{d.get('/instances').json()[0]}")
    assert d.put("/modalities/known", json={"AET": "KNOWN", "Host": "127.0.0.1", "Port": 104,
                                            "AllowStore": False}).status_code == 200
    _run("storescu", "-aet", "KNOWN", "-aec", "OURS", "127.0.0.1", port, CT_SMALL, ok=False)
    assert d.get("/instances").json() == []


def _associate_request(called: str, calling: str) -> bytes:
    """An A-ASSOCIATE-RQ proposing Verification (PS3.8 §9.3.2)."""
    def item(kind: int, body: bytes) -> bytes:
        return struct.pack(">BBH", kind, 0, len(body)) + body

    context = item(0x20, bytes([1, 0, 0, 0]) + item(0x30, b"1.2.840.10008.1.1") + item(0x40, b"1.2.840.10008.1.2"))
    user = item(0x50, item(0x51, struct.pack(">I", 16384)))
    body = (struct.pack(">HH", 1, 0) + called.ljust(16).encode() + calling.ljust(16).encode() + bytes(32)
            + item(0x10, b"1.2.840.10008.3.1.1.1") + context + user)
    return struct.pack(">BBI", 1, 0, len(body)) + body


def test_bad_input_never_hurts(make_daemon):
    d = make_daemon({"DicomAet": "OURS", "DicomScpTimeout": 2})
    port = d.dicom_port
    # Garbage instead of a PDU, then a C-STORE cut in the middle of its data set.
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET / HTTP/1.1\r\n\r\n" * 10)
        s.settimeout(5)
        try:
            s.recv(100)
        except OSError:
            pass
    data = Path(CT_SMALL).read_bytes()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(_associate_request("OURS", "CUTTER"))
        assert s.recv(6)[0] == 0x02  # A-ASSOCIATE-AC
        # A P-DATA-TF that announces more bytes than it sends, then the connection closes.
        s.sendall(struct.pack(">BBI", 4, 0, len(data) + 100) + data[:1000])
    # Many associations at once: each is refused or served, HTTP keeps answering meanwhile.
    sockets = []
    try:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(_associate_request("OURS", "MANY"))
            sockets.append(s)
        assert d.get("/system").status_code == 200
    finally:
        for s in sockets:
            s.close()
    assert d.get("/instances").json() == []
    _run("echoscu", "-aec", "OURS", "127.0.0.1", str(port))
    assert _store(d, CT_SMALL).returncode == 0 and len(d.get("/instances").json()) == 1


def _pdv(context_id: int, header: int, body: bytes) -> bytes:
    """A P-DATA-TF PDU holding one PDV (PS3.8 §9.3.5)."""
    return struct.pack(">BBIIBB", 4, 0, len(body) + 6, len(body) + 2, context_id, header) + body


def _received(s: socket.socket) -> bytes:
    s.settimeout(10)
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def test_malformed_messages_are_aborted_or_refused(make_daemon):
    """On an accepted association: a command set that is not one is aborted (A-ABORT, connection
    closed); a C-ECHO answered; a C-STORE of a data set that is not one answered with a failure
    status and nothing stored. The daemon serves the next association."""
    d = make_daemon({"DicomAet": "OURS"})
    from dicomweb_daemon.dimse import commands

    with socket.create_connection(("127.0.0.1", d.dicom_port)) as s:
        s.sendall(_associate_request("OURS", "BROKEN"))
        assert s.recv(6)[0] == 0x02
        s.sendall(_pdv(1, 0x03, b"\x08\x00\x10\x00" + b"\xff" * 20))  # group 0008 in a command set
        assert _received(s)[-10:][:1] == b"\x07"  # the association's last PDU: A-ABORT
    with socket.create_connection(("127.0.0.1", d.dicom_port)) as s:
        s.sendall(_associate_request("OURS", "BROKEN"))
        s.recv(65536)
        echo = commands.encode(AffectedSOPClassUID="1.2.840.10008.1.1", CommandField=commands.C_ECHO_RQ, MessageID=3,
                               CommandDataSetType=commands.NO_DATA_SET)
        s.sendall(_pdv(1, 0x03, echo))
        s.settimeout(10)
        answer = s.recv(65536)
        assert answer[0] == 0x04 and commands.decode(answer[12:])["Status"] == 0
        store = commands.encode(AffectedSOPClassUID="1.2.840.10008.1.1", CommandField=commands.C_STORE_RQ,
                                MessageID=4, CommandDataSetType=commands.DATA_SET, AffectedSOPInstanceUID="1.2.3")
        s.sendall(_pdv(1, 0x03, store) + _pdv(1, 0x02, b"\x00" * 10))  # on the Verification context
        answer = s.recv(65536)
        assert answer[0] == 0x04 and commands.decode(answer[12:])["Status"] != 0
        s.sendall(struct.pack(">BBI", 5, 0, 4) + bytes(4))  # A-RELEASE-RQ
        assert _received(s)[:1] == b"\x06"
    assert d.get("/instances").json() == []
    _run("echoscu", "-aec", "OURS", "127.0.0.1", str(d.dicom_port))


def test_find_answers_in_the_default_encoding_and_move_infers_its_level(make_daemon, tmp_path):
    """C-FIND answers are written in DefaultEncoding's character set, characters it lacks left out
    (as Orthanc); a C-MOVE without QueryRetrieveLevel is taken at its most specific key's level."""
    d = make_daemon({"DicomAet": "OURS", "DefaultEncoding": "Latin1",
                     "DicomModalities": {"finder": ["FINDER", "127.0.0.1", free_port()]}})
    path = tmp_path / "utf8.dcm"
    path.write_bytes(make_ct(patient_name="Müller^Дмитрий", charset="ISO_IR 192", study_uid=STUDY))
    _store(d, str(path))
    done = subprocess.run([_tool("findscu"), "-v", "-S", "-aet", "FINDER", "-aec", "OURS", "-k",
                           "QueryRetrieveLevel=STUDY", "-k", "SpecificCharacterSet", "-k", "PatientName",
                           "127.0.0.1", str(d.dicom_port)], capture_output=True, timeout=60)
    text = done.stderr.decode("latin-1")
    assert "[ISO_IR 100]" in text and "[Müller^ ]" in text  # the Cyrillic letters are left out
    job_count = len(d.get("/jobs").json())
    _run("movescu", "-S", "-aet", "FINDER", "-aem", "FINDER", "-aec", "OURS", "-k", "AccessionNumber=",
         "-k", "StudyInstanceUID=", "127.0.0.1", str(d.dicom_port), ok=False)
    assert len(d.get("/jobs").json()) == job_count  # empty keys: nothing to move, no job


def test_find_answers_go_in_chunks_up_to_the_limit(make_daemon):
    """More answers than one chunk (the index hands over 32, then more at a time, while it reads
    the rest): each study once, ``LimitFindResults`` of them, then success."""
    from pydicom.dataset import Dataset
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

    d = make_daemon({"DicomAet": "OURS", "LimitFindResults": 70,
                     "DicomModalities": {"finder": ["FINDER", "127.0.0.1", free_port()]}})
    uids = {f"{STUDY}.{i}" for i in range(75)}
    for i, uid in enumerate(sorted(uids)):
        d.store(make_ct(patient_id=f"P{i}", study_uid=uid, series_uid=f"{uid}.1", sop_uid=f"{uid}.1.1"))
    ae = AE("FINDER")
    ae.add_requested_context(FIND)
    assoc = ae.associate("127.0.0.1", d.dicom_port, ae_title="OURS")
    assert assoc.is_established
    try:
        query = Dataset()
        query.QueryRetrieveLevel, query.StudyInstanceUID, query.PatientID = "STUDY", "", ""
        answers, final = [], None
        for status, identifier in assoc.send_c_find(query, FIND):
            if status.Status == 0xFF00:
                answers.append((identifier.StudyInstanceUID, identifier.PatientID))
            else:
                final = status.Status
    finally:
        assoc.release()
    assert final == 0x0000 and len(answers) == 70
    assert len({uid for uid, _ in answers}) == 70 and {uid for uid, _ in answers} <= uids
    assert all(pid == f"P{sorted(uids).index(uid)}" for uid, pid in answers)


def test_unknown_sop_classes_only_when_accepted(make_daemon):
    """A SOP class pynetdicom does not know is refused (no presentation context), unless
    ``UnknownSopClassAccepted``: then stored like any other instance."""
    private_class = "1.2.826.0.1.3680043.8.498.999.1"
    data = make_ct(sop_uid=f"{STUDY}.999.1", extra={"SOPClassUID": private_class})
    ds = pydicom.dcmread(io.BytesIO(data))

    refusing = make_daemon({"DicomAet": "OURS"})
    assert _c_store(refusing.dicom_port, ds) is None and refusing.get("/instances").json() == []
    accepting = make_daemon({"DicomAet": "OURS", "UnknownSopClassAccepted": True})
    assert _c_store(accepting.dicom_port, ds) == 0
    [instance] = accepting.get("/instances").json()
    assert accepting.get(f"/instances/{instance}/file").content.find(private_class.encode()) > 0


def test_accepted_syntaxes_and_unknown_classes_change_at_run_time(make_daemon):
    """Orthanc's /tools/accepted-transfer-syntaxes and /tools/unknown-sop-class-accepted: the next
    associations negotiate with what was PUT (a JPEG file and a private SOP class refused, then
    stored); bad values are 400 and change nothing."""
    from pydicom.data import get_testdata_file

    d = make_daemon({"DicomAet": "OURS"})
    jpeg = pydicom.dcmread(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"))
    private = pydicom.dcmread(io.BytesIO(make_ct(sop_uid=f"{STUDY}.8.1",
                                                 extra={"SOPClassUID": "1.2.826.0.1.3680043.8.498.999.2"})))

    def send(ds) -> int | None:
        return _c_store(d.dicom_port, ds)
    uncompressed = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"]
    assert sorted(d.put("/tools/accepted-transfer-syntaxes", json.dumps(uncompressed)).json()) == uncompressed
    assert d.put("/tools/accepted-transfer-syntaxes", "9.9.*").status_code == 400  # matches nothing
    assert sorted(d.get("/tools/accepted-transfer-syntaxes").json()) == uncompressed
    assert d.put("/tools/unknown-sop-class-accepted", "nope").status_code == 400
    d.put("/tools/unknown-sop-class-accepted", "0")
    assert d.get("/tools/unknown-sop-class-accepted").json() == 0
    assert send(jpeg) is None and send(private) is None and d.get("/instances").json() == []

    everything = d.put("/tools/accepted-transfer-syntaxes", "*", headers={"Content-Type": "text/plain"}).json()
    assert len(everything) >= 42 and "1.2.840.10008.1.2.4.50" in everything
    d.put("/tools/unknown-sop-class-accepted", "true")
    assert d.get("/tools/unknown-sop-class-accepted").json() == 1
    assert send(jpeg) == 0 and send(private) == 0 and len(d.get("/instances").json()) == 2


def _c_store(port: int, ds) -> int | None:
    """C-STORE of ``ds`` proposed in its own SOP class and transfer syntax only: the status, or None
    when the daemon accepted no context for it."""
    from pynetdicom import AE

    ae = AE("SENDER")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="OURS")
    try:
        if not assoc.is_established or not assoc.accepted_contexts:
            return None
        return int(assoc.send_c_store(ds).Status)
    finally:
        assoc.release()
