"""The SCU half of DICOM networking over Orthanc's REST routes, against real nodes: DCMTK's storescp
(C-ECHO, C-STORE byte for byte), pynetdicom SCPs run by the test (what our C-FIND / C-MOVE send,
DIMSE failure statuses) and a real Orthanc (C-FIND queries kept in /queries, C-MOVE to ourselves,
C-GET); the modalities themselves (CRUD, kept in the index with DicomModalitiesInDatabase) and
every way an association fails, reported with the modality and the reason."""
from __future__ import annotations

import io
import json
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pydicom
import pytest
import requests
from pynetdicom import AE, StoragePresentationContexts, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    ModalityWorklistInformationFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from tests.conftest import free_port, wait_job
from tests.dcmtk import dataset_bytes, same_content, tool, wait_port
from tests.dcmtk import received as _received
from tests.dicom_files import CT_SMALL, MR_SMALL, RGB_JPEG, make_ct

ORTHANC = shutil.which("Orthanc") or next((p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if Path(p).exists()),
                                          None)
STUDY = "1.2.826.0.1.3680043.8.498.4242"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


def scu_daemon(make_daemon, modalities: dict, **config):
    """A daemon with our own DICOM port, its SCP off unless asked (the SCU needs none)."""
    conf = {"DicomPort": free_port(), "DicomAet": "OURS", "DicomServerEnabled": False,
            "DicomModalities": modalities, "DicomScuTimeout": 5, **config}
    return make_daemon(conf)


@pytest.fixture
def storescp(tmp_path):
    """DCMTK's storescp on a free port, writing what it receives bit for bit (+B), any syntax (+xa)."""
    started = []

    def start(*options: str) -> tuple[int, Path]:
        port, folder = free_port(), tmp_path / f"received{len(started)}"
        folder.mkdir()
        proc = subprocess.Popen([tool("storescp"), "-aet", "STORESCP", "-od", str(folder), *options, str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        wait_port(port)
        return port, folder

    yield start
    for proc in started:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


@pytest.fixture
def pynetdicom_scp():
    """A pynetdicom SCP run by the test, with the handlers and contexts it is given."""
    servers = []

    def start(aet: str, contexts: list, handlers: list, **ae_options) -> int:
        ae = AE(aet)
        for context in contexts:
            if isinstance(context, tuple):
                ae.add_supported_context(*context)
            else:
                ae.add_supported_context(context)
        for key, value in ae_options.items():
            setattr(ae, key, value)
        port = free_port()
        servers.append(ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers))
        return port

    yield start
    for server in servers:
        server.shutdown()


# -- the modalities ---------------------------------------------------------------------------------------
def test_modalities_crud_in_database_survive_a_restart(make_daemon):
    """Modalities are listed, read, added (short and long forms), replaced and removed as Orthanc does;
    a bad definition is 400, an unknown name 404; with DicomModalitiesInDatabase, those added over
    REST survive a restart and a deleted configured one comes back from the configuration."""
    d = scu_daemon(make_daemon, {"conf": ["CONF", "127.0.0.1", 104]}, DicomModalitiesInDatabase=True)
    assert d.put("/modalities/short", json.dumps(["SHORT", "10.0.0.1", 11112, "GE"])).status_code == 200
    long_form = {"AET": "LONG", "Host": "localhost", "Port": 4242, "AllowStore": False, "LocalAet": "ME",
                 "Timeout": 7, "Manufacturer": "Dcm4Chee"}
    assert d.put("/modalities/long", json.dumps(long_form)).status_code == 200
    assert d.get("/modalities").json() == ["conf", "long", "short"]
    expanded = d.get("/modalities?expand").json()
    assert expanded["short"]["Manufacturer"] == "GE" and expanded["short"]["Port"] == 11112
    configuration = d.get("/modalities/long/configuration").json()
    assert configuration == expanded["long"]
    assert (configuration["AET"], configuration["AllowStore"], configuration["AllowFind"], configuration["LocalAet"],
            configuration["Timeout"]) == ("LONG", False, True, "ME", 7)
    assert sorted(configuration) == sorted(["AET", "AllowEcho", "AllowEventReport", "AllowFind", "AllowFindWorklist",
                                            "AllowGet", "AllowMove", "AllowNAction", "AllowStore", "AllowTranscoding",
                                            "Host", "LocalAet", "Manufacturer", "Port", "Timeout", "UseDicomTls"])
    operations = d.get("/modalities/conf").json()
    assert {"echo", "store", "store-straight", "query", "move", "get", "configuration"} <= set(operations)
    for bad in (["X", "h"], {"AET": "X", "Host": "h"}, ["X", "h", 0], ["X", "h", 70000], {"AET": "X", "Host": "h",
                "Port": 1, "Manufacturer": "Nope"}, {"AET": "X", "Host": "h", "Port": 1, "AllowStore": "yes"}, "text"):
        r = d.put("/modalities/bad", json.dumps(bad))
        assert r.status_code == 400, bad
        assert r.json()["Details"]
    assert d.get("/modalities/bad").status_code == 404
    assert d.get("/modalities/nope/configuration").status_code == 404
    assert d.delete("/modalities/nope").status_code == 404
    assert d.delete("/modalities/conf").status_code == 200
    assert d.delete("/modalities/short").status_code == 200
    assert d.get("/modalities").json() == ["long"]
    d.stop()
    d.start()
    assert d.get("/modalities").json() == ["conf", "long"]
    assert d.get("/modalities/long/configuration").json() == configuration


# -- C-ECHO and association failures ------------------------------------------------------------------------
def test_echo_and_the_reasons_an_association_fails(make_daemon, storescp):
    """C-ECHO answers {} when the node answers; otherwise a 500 naming the modality and the reason:
    nothing listening, nothing answering within the Timeout (of the body, else of the modality)."""
    port, _ = storescp()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # the connection is taken by the kernel, the association never answered
    closed = free_port()
    d = scu_daemon(make_daemon, {"scp": ["STORESCP", "127.0.0.1", port], "closed": ["GONE", "127.0.0.1", closed],
                                 "silent": {"AET": "SILENT", "Host": "127.0.0.1", "Port": silent.getsockname()[1],
                                            "Timeout": 1}})
    try:
        assert d.post("/modalities/scp/echo", "{}").json() == {}
        assert d.post("/modalities/scp/echo").json() == {}  # the body is optional
        assert d.post("/tools/dicom-echo", json.dumps({"AET": "STORESCP", "Host": "127.0.0.1", "Port": port})) \
            .json() == {}
        r = d.post("/modalities/closed/echo", "{}")
        assert r.status_code == 500
        body = r.json()
        assert (body["OrthancStatus"], body["Message"]) == (9, "Error in the network protocol")
        assert 'AET "GONE"' in body["Details"] and 'modality "closed"' in body["Details"]
        assert "Connection refused" in body["Details"]
        started = time.monotonic()
        r = d.post("/modalities/silent/echo", "{}")
        assert r.status_code == 500 and "no answer" in r.json()["Details"] and "1 s" in r.json()["Details"]
        assert time.monotonic() - started < 4
        r = d.post("/modalities/silent/echo", json.dumps({"Timeout": 2}))
        assert "2 s" in r.json()["Details"]
        assert d.post("/modalities/scp/echo", json.dumps({"Timeout": "x"})).status_code == 400
        assert d.post("/modalities/nope/echo", "{}").status_code == 404
        assert d.post("/tools/dicom-echo", json.dumps({"AET": "X", "Host": "127.0.0.1"})).status_code == 400
        assert d.post("/modalities/scp/echo", json.dumps({"LocalAet": "A" * 17})).status_code == 400
    finally:
        silent.close()


def test_rejection_and_failure_statuses_are_named(make_daemon, pynetdicom_scp):
    """An association rejected, and a DIMSE failure status, are errors naming the modality, the
    reason, and the status in hex."""
    rejecting = pynetdicom_scp("PICKY", [Verification], [], require_calling_aet=["SOMEONE"])
    refusing = pynetdicom_scp("REFUSER", [Verification], [(evt.EVT_C_ECHO, lambda event: 0x0122)])
    d = scu_daemon(make_daemon, {"picky": ["PICKY", "127.0.0.1", rejecting],
                                 "refuser": ["REFUSER", "127.0.0.1", refusing]})
    details = d.post("/modalities/picky/echo", "{}").json()["Details"]
    assert "rejected" in details and "Calling AE title not recognised" in details and 'modality "picky"' in details
    r = d.post("/modalities/refuser/echo", "{}")
    assert r.status_code == 500 and "C-ECHO" in r.json()["Details"] and "0x0122" in r.json()["Details"]
    # The calling AET of a request, else of the modality, else DicomAet: the picky SCP takes SOMEONE.
    assert d.post("/modalities/picky/echo", json.dumps({"LocalAet": "SOMEONE"})).json() == {}


# -- C-STORE ----------------------------------------------------------------------------------------------------
def test_store_sends_every_instance_byte_for_byte(make_daemon, storescp, tmp_path):
    """POST /modalities/{name}/store (an ID as text, a list, or an object) sends every instance under
    the resources over one association, each in its stored transfer syntax: storescp receives the
    data sets byte for byte; the answer is Orthanc's job content."""
    port, folder = storescp("+B", "+xa")
    d = scu_daemon(make_daemon, {"scp": ["STORESCP", "127.0.0.1", port]})
    series = [make_ct(study_uid=STUDY, series_uid=f"{STUDY}.1", sop_uid=f"{STUDY}.1.{i}", instance_number=i)
              for i in range(3)]
    stored = [d.store(data) for data in series] + [d.store(CT_SMALL), d.store(MR_SMALL), d.store(RGB_JPEG)]
    study = stored[0]["ParentStudy"]
    answer = d.post("/modalities/scp/store", study).json()
    assert answer == {"Description": "REST API", "FailedInstancesCount": 0, "InstancesCount": 3, "LocalAet": "OURS",
                      "ParentResources": [study], "RemoteAet": "STORESCP"}
    ids = [s["ID"] for s in stored[3:]]
    answer = d.post("/modalities/scp/store", json.dumps(ids)).json()
    assert answer["InstancesCount"] == 3 and answer["ParentResources"] == ids
    received = {pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID: data for data in _received(folder, 6)}
    for item in stored:
        ours = d.get(f"/instances/{item['ID']}/file").content
        uid = pydicom.dcmread(io.BytesIO(ours)).SOPInstanceUID
        assert dataset_bytes(received[uid]) == dataset_bytes(ours), uid
        assert pydicom.dcmread(io.BytesIO(received[uid])).file_meta.TransferSyntaxUID == \
            pydicom.dcmread(io.BytesIO(ours)).file_meta.TransferSyntaxUID
    # The object form, its options, and an empty list.
    answer = d.post("/modalities/scp/store", json.dumps({"Resources": [ids[0]], "LocalAet": "OTHER",
                                                          "MoveOriginatorAet": "MOVER", "MoveOriginatorID": 7,
                                                          "Timeout": 5})).json()
    assert (answer["LocalAet"], answer["MoveOriginatorAET"], answer["MoveOriginatorID"]) == ("OTHER", "MOVER", 7)
    assert d.post("/modalities/scp/store", "[]").json()["InstancesCount"] == 0


def test_store_transcodes_what_the_remote_refuses_and_runs_as_a_job(make_daemon, storescp):
    """A remote that takes only uncompressed syntaxes gets a JPEG instance transcoded to explicit VR
    little endian (unless the modality forbids transcoding); asked asynchronously, the store is a
    DicomModalityStore job; unknown resources are 404 before any job; StorageCommitment to a node
    without storage commitment fails, naming it."""
    port, folder = storescp()  # storescp's default: uncompressed syntaxes only
    d = scu_daemon(make_daemon, {"scp": ["STORESCP", "127.0.0.1", port],
                                 "strict": {"AET": "STORESCP", "Host": "127.0.0.1", "Port": port,
                                            "AllowTranscoding": False}})
    jpeg = d.store(RGB_JPEG)["ID"]
    assert d.post("/modalities/scp/store", jpeg).json()["FailedInstancesCount"] == 0
    [data] = _received(folder, 1)
    received = pydicom.dcmread(io.BytesIO(data))
    assert received.file_meta.TransferSyntaxUID == EXPLICIT_LE
    ours = pydicom.dcmread(io.BytesIO(d.get(f"/instances/{jpeg}/file").content))
    assert received.SOPInstanceUID == ours.SOPInstanceUID
    assert received.pixel_array.shape == ours.pixel_array.shape
    r = d.post("/modalities/strict/store", jpeg)
    assert r.status_code == 500 and "presentation context" in r.json()["Details"]
    job = d.post("/modalities/scp/store", json.dumps({"Resources": [jpeg], "Synchronous": False})).json()
    done = wait_job(d, job["ID"])
    assert (done["Type"], done["State"]) == ("DicomModalityStore", "Success")
    assert done["Content"]["InstancesCount"] == 1 and done["Content"]["RemoteAet"] == "STORESCP"
    unknown = "00000000-00000000-00000000-00000000-00000000"
    assert d.post("/modalities/scp/store", unknown).status_code == 404
    assert d.post("/modalities/scp/store", json.dumps({"Resources": [unknown], "Synchronous": False})) \
        .status_code == 404
    r = d.post("/modalities/scp/store", json.dumps({"Resources": [jpeg], "StorageCommitment": True}))
    assert r.status_code == 500 and "Storage Commitment Push Model" in r.json()["Details"], r.text
    assert d.post("/modalities/nope/store", jpeg).status_code == 404
    # store-straight: the body's file, as it is.
    r = d.post("/modalities/scp/store-straight", Path(CT_SMALL).read_bytes())
    assert r.json() == {"SOPClassUID": CTImageStorage, "SOPInstanceUID": pydicom.dcmread(CT_SMALL).SOPInstanceUID}
    assert d.post("/modalities/scp/store-straight", b"garbage").status_code == 400


def test_store_failure_status_stops_unless_permissive(make_daemon, pynetdicom_scp):
    """A C-STORE failure status is a 500 naming it in hex (the association stops there), unless
    Permissive: then the instance is counted in FailedInstancesCount and the others go on; a remote
    that takes none of the files' SOP classes is an error saying so."""
    def on_store(event):
        return 0xA700 if event.request.AffectedSOPInstanceUID.endswith(".1") else 0x0000

    port = pynetdicom_scp("PICKY", [CTImageStorage], [(evt.EVT_C_STORE, on_store)])
    d = scu_daemon(make_daemon, {"picky": ["PICKY", "127.0.0.1", port]})
    ids = [d.store(make_ct(study_uid=STUDY, series_uid=f"{STUDY}.1", sop_uid=f"{STUDY}.1.{i}"))["ID"]
           for i in range(3)]
    r = d.post("/modalities/picky/store", json.dumps(ids))
    assert r.status_code == 500
    assert 'C-STORE SCU to AET "PICKY"' in r.json()["Details"] and "0xA700" in r.json()["Details"]
    answer = d.post("/modalities/picky/store", json.dumps({"Resources": ids, "Permissive": True})).json()
    assert (answer["InstancesCount"], answer["FailedInstancesCount"]) == (3, 1)
    mr = d.store(MR_SMALL)["ID"]
    r = d.post("/modalities/picky/store", mr)
    assert r.status_code == 500 and "presentation contexts" in r.json()["Details"]


def test_a_store_job_stops_between_instances_when_canceled(make_daemon, pynetdicom_scp):
    """An asynchronous store checks for a pause or a cancel between instances: canceled, the job
    fails as Orthanc's canceled jobs do (ErrorCode 47) and the rest is not sent."""
    received: list[str] = []

    def on_store(event):
        time.sleep(0.2)
        received.append(event.request.AffectedSOPInstanceUID)
        return 0

    port = pynetdicom_scp("SLOWSCP", [CTImageStorage], [(evt.EVT_C_STORE, on_store)])
    d = scu_daemon(make_daemon, {"slow": ["SLOWSCP", "127.0.0.1", port]})
    study = [d.store(make_ct(study_uid=STUDY, series_uid=f"{STUDY}.2", sop_uid=f"{STUDY}.2.{i}"))
             for i in range(25)][0]["ParentStudy"]
    job = d.post("/modalities/slow/store", json.dumps({"Resources": [study], "Synchronous": False})).json()["ID"]
    deadline = time.time() + 20
    while len(received) < 3 and time.time() < deadline:
        time.sleep(0.05)
    assert d.post(f"/jobs/{job}/cancel").status_code == 200
    done = wait_job(d, job)
    assert (done["State"], done["ErrorCode"]) == ("Failure", 47)
    assert 3 <= len(received) < 25


# -- C-FIND: what is sent ----------------------------------------------------------------------------------
def test_query_identifiers_are_normalized_as_orthanc(make_daemon, pynetdicom_scp):
    """A query sends its level's identifying keys (empty) and, normalized, only the keys of the
    level's modules and of its parents' (InstitutionName left out of a Study query), all of them
    with Normalize false; manufacturer fix-ups; a C-FIND failure status is an error; Level and Query
    are checked (400)."""
    seen: list[pydicom.Dataset] = []

    def on_find(event):
        seen.append(event.identifier)
        if event.identifier.get("PatientName") == "FAIL":
            yield 0xA900, None
            return
        answer = pydicom.Dataset()
        answer.QueryRetrieveLevel = event.identifier.QueryRetrieveLevel
        answer.PatientName = "DOE^JOHN"
        answer.StudyInstanceUID = STUDY
        yield 0xFF00, answer

    port = pynetdicom_scp("FINDER", [StudyRootQueryRetrieveInformationModelFind], [(evt.EVT_C_FIND, on_find)])
    d = scu_daemon(make_daemon, {"finder": ["FINDER", "127.0.0.1", port],
                                 "nowild": {"AET": "FINDER", "Host": "127.0.0.1", "Port": port,
                                            "Manufacturer": "GenericNoUniversalWildcard"}})
    query = {"PatientName": "DOE*", "StudyDate": "20200101-", "InstitutionName": "X", "SeriesDescription": "Y",
             "0008,0090": "", "NumberOfStudyRelatedInstances": ""}
    r = d.post("/modalities/finder/query", json.dumps({"Level": "Study", "Query": query}))
    assert r.status_code == 200 and r.json()["Path"] == f"/queries/{r.json()['ID']}"
    sent = seen[-1]
    assert sent.QueryRetrieveLevel == "STUDY" and sent.SpecificCharacterSet == "ISO_IR 100"
    keys = {e.keyword for e in sent}
    assert keys == {"SpecificCharacterSet", "QueryRetrieveLevel", "PatientName", "StudyDate", "ReferringPhysicianName",
                    "NumberOfStudyRelatedInstances", "AccessionNumber", "PatientID", "StudyInstanceUID"}
    assert (sent.PatientName, sent.StudyDate, sent.PatientID) == ("DOE*", "20200101-", "")
    d.post("/modalities/finder/query", json.dumps({"Level": "Study", "Query": query, "Normalize": False}))
    assert {"InstitutionName", "SeriesDescription"} <= {e.keyword for e in seen[-1]}
    d.post("/modalities/nowild/query", json.dumps({"Level": "Series", "Query": {"Modality": "*"}}))
    assert seen[-1].Modality == "" and seen[-1].QueryRetrieveLevel == "SERIES" and "SeriesInstanceUID" in seen[-1]
    r = d.post("/modalities/finder/query", json.dumps({"Level": "Study", "Query": {"PatientName": "FAIL"}}))
    assert r.status_code == 500 and "C-FIND" in r.json()["Details"] and "0xA900" in r.json()["Details"]
    for bad in ({"Query": {}}, {"Level": "Nope", "Query": {}}, {"Level": "Study", "Query": {"Nope": ""}},
                {"Level": "Study", "Query": {"PatientName": 3}}, {"Level": "Study", "Query": []}):
        assert d.post("/modalities/finder/query", json.dumps(bad)).status_code == 400, bad
    # A remote without the query model: Orthanc's own error for it.
    r = d.post("/modalities/finder/query", json.dumps({"Level": "Patient", "Query": {}}))
    assert r.status_code == 500 and r.json()["OrthancStatus"] == 2016
    # C-MOVE to a node that offers no C-MOVE, likewise.
    r = d.post("/modalities/finder/move", json.dumps({"Level": "Study", "Resources": [{"StudyInstanceUID": STUDY}]}))
    assert r.status_code == 500 and r.json()["OrthancStatus"] == 2017


def test_find_worklist(make_daemon, pynetdicom_scp):
    """find-worklist: a C-FIND on the Modality Worklist model with the body's keys (sequences as
    lists of objects), each item answered as its tags by name (Short: by number; Full: both);
    keys that cannot be are 400; a remote without the worklist model refuses."""
    seen: list[pydicom.Dataset] = []

    def on_find(event):
        seen.append(event.identifier)
        for name in ("DOE^JOHN", "ROE^JANE"):
            item = pydicom.Dataset()
            item.PatientName, item.AccessionNumber = name, "A1"
            step = pydicom.Dataset()
            step.Modality, step.ScheduledStationAETitle = "CT", "CT01"
            item.ScheduledProcedureStepSequence = [step]
            yield 0xFF00, item

    port = pynetdicom_scp("RIS", [ModalityWorklistInformationFind], [(evt.EVT_C_FIND, on_find)])
    finder = pynetdicom_scp("FINDER", [StudyRootQueryRetrieveInformationModelFind], [])
    d = scu_daemon(make_daemon, {"ris": ["RIS", "127.0.0.1", port], "finder": ["FINDER", "127.0.0.1", finder]})
    assert "find-worklist" in d.get("/modalities/ris").json()
    query = {"PatientName": "", "AccessionNumber": "A*",
             "ScheduledProcedureStepSequence": [{"Modality": "CT", "ScheduledStationAETitle": ""}]}
    r = d.post("/modalities/ris/find-worklist", json.dumps({"Query": query}))
    assert r.status_code == 200, r.text
    answers = r.json()
    assert [a["PatientName"] for a in answers] == ["DOE^JOHN", "ROE^JANE"]
    assert answers[0]["ScheduledProcedureStepSequence"] == [{"Modality": "CT", "ScheduledStationAETitle": "CT01"}]
    sent = seen[-1]
    assert sent.AccessionNumber == "A*" and sent.ScheduledProcedureStepSequence[0].Modality == "CT"
    assert "QueryRetrieveLevel" not in sent
    short = d.post("/modalities/ris/find-worklist", json.dumps({"Query": query, "Short": True})).json()
    assert short[0]["0010,0010"] == "DOE^JOHN"
    full = d.post("/modalities/ris/find-worklist", json.dumps({"Query": query, "Full": True})).json()
    assert full[0]["0010,0010"] == {"Name": "PatientName", "Type": "String", "Value": "DOE^JOHN"}
    for bad in ({"Query": {"Nope": ""}}, {"Query": {"PatientName": 3}}, {"Query": {"PatientName": []}},
                {"Query": {"ScheduledProcedureStepSequence": ["x"]}}, {"Query": []}):
        assert d.post("/modalities/ris/find-worklist", json.dumps(bad)).status_code == 400, bad
    r = d.post("/modalities/finder/find-worklist", json.dumps({"Query": query}))
    assert r.status_code == 500 and r.json()["OrthancStatus"] == 2016


def test_move_sends_only_the_unique_keys(make_daemon, pynetdicom_scp):
    """A C-MOVE carries its level and the unique keys down to it (the other keys of a resource left
    out); its destination is TargetAet, else our own AET; a failure status is an error (422 for
    "unable to process", as Orthanc) unless Permissive, which reports each status in Details."""
    seen: list[tuple[str, pydicom.Dataset]] = []

    def on_move(event):
        seen.append((event.move_destination, event.identifier))
        if event.identifier.get("StudyInstanceUID") == "1.2.3":
            yield None, None  # an unknown destination: 0xA801
            return
        yield "127.0.0.1", 1, {}  # never used: no sub-operation
        yield 0

    port = pynetdicom_scp("MOVER", [StudyRootQueryRetrieveInformationModelMove], [(evt.EVT_C_MOVE, on_move)])
    d = scu_daemon(make_daemon, {"mover": ["MOVER", "127.0.0.1", port]})
    body = {"Level": "Series", "Resources": [{"StudyInstanceUID": STUDY, "SeriesInstanceUID": f"{STUDY}.1",
                                              "PatientID": "P1", "Modality": "CT"}], "TargetAet": "ELSEWHERE"}
    answer = d.post("/modalities/mover/move", json.dumps(body)).json()
    destination, identifier = seen[-1]
    assert destination.strip() == "ELSEWHERE"
    assert {e.keyword for e in identifier} == {"QueryRetrieveLevel", "StudyInstanceUID", "SeriesInstanceUID"}
    assert (answer["RemoteAet"], answer["TargetAet"], answer["Details"][0]["DimseErrorStatus"]) == \
        ("MOVER", "ELSEWHERE", 0)
    del body["TargetAet"]
    d.post("/modalities/mover/move", json.dumps(body))
    assert seen[-1][0].strip() == "OURS"
    failing = {"Level": "Study", "Resources": [{"StudyInstanceUID": "1.2.3"}]}
    r = d.post("/modalities/mover/move", json.dumps(failing))
    assert r.status_code == 500 and "0xA801" in r.json()["Details"] and 'modality "mover"' in r.json()["Details"]
    answer = d.post("/modalities/mover/move", json.dumps({**failing, "Permissive": True})).json()
    assert answer["Details"][0]["DimseErrorStatus"] == 0xA801
    assert d.post("/modalities/mover/move", json.dumps({"Resources": [{}]})).status_code == 400
    assert d.post("/modalities/mover/move", json.dumps({"Level": "Study", "Resources": []})).status_code == 400


# -- against a real Orthanc --------------------------------------------------------------------------------
class Orthanc:
    """A real Orthanc on loopback ports, knowing our daemon as the modality "ours"."""

    def __init__(self, folder: Path, ours_port: int):
        self.port, self.dicom_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {"Name": "QR", "HttpPort": self.port, "DicomPort": self.dicom_port, "DicomAet": "ORTHANCQR",
                  "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "index"),
                  "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "Plugins": [],
                  "DicomModalities": {"ours": ["OURS", "127.0.0.1", ours_port]}}
        (folder / "orthanc.json").write_text(json.dumps(config))
        self.log = open(folder / "orthanc.log", "ab")
        self.proc = subprocess.Popen([ORTHANC, str(folder / "orthanc.json")], cwd=folder, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/system", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise RuntimeError("Orthanc did not start")

    def store(self, data: bytes) -> dict:
        return requests.post(self.url + "/instances", data=data, timeout=30).json()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def orthanc_and_us(make_daemon, tmp_path):
    """A real Orthanc holding a CT study of 3 instances and MR_small, and our daemon (its SCP on) that
    knows it as "orthanc" and keeps 3 queries at most."""
    assert ORTHANC is not None, "Orthanc (Debian package orthanc) is needed: .ci/run installs it"
    ours = free_port()
    folder = tmp_path / "orthanc"
    folder.mkdir()
    orthanc = Orthanc(folder, ours)
    files = [make_ct(patient_id="QR1", study_uid=STUDY, series_uid=f"{STUDY}.1", sop_uid=f"{STUDY}.1.{i}",
                     instance_number=i) for i in range(3)]
    files.append(Path(MR_SMALL).read_bytes())
    stored = [orthanc.store(data) for data in files]
    d = make_daemon({"DicomPort": ours, "DicomAet": "OURS", "QueryRetrieveSize": 3, "DicomScuTimeout": 10,
                     "DicomModalities": {"orthanc": ["ORTHANCQR", "127.0.0.1", orthanc.dicom_port]}})
    yield orthanc, d, files, stored
    orthanc.stop()


def test_query_answers_and_child_queries_against_orthanc(orthanc_and_us):
    """A query to Orthanc makes /queries/{id}: its level, modality, query, answers (expanded in the
    full, simplify and short forms), each answer's content and child queries; queries live in the
    index (they survive a restart), the oldest dropped past QueryRetrieveSize, and can be deleted."""
    orthanc, d, _files, _stored = orthanc_and_us
    r = d.post("/modalities/orthanc/query", json.dumps({"Level": "Study", "Query": {"PatientName": "",
                                                                                   "ModalitiesInStudy": ""}}))
    query = r.json()["ID"]
    assert d.get("/queries").json() == [query]
    assert d.get(f"/queries/{query}").json() == ["answers", "level", "modality", "query", "retrieve"]
    assert d.get(f"/queries/{query}/level").text == "Study"
    assert d.get(f"/queries/{query}/modality").text == "orthanc"
    assert d.get(f"/queries/{query}/query?simplify").json() == {"ModalitiesInStudy": "", "PatientName": ""}
    assert d.get(f"/queries/{query}/query").json()["0010,0010"] == {"Name": "PatientName", "Type": "String",
                                                                    "Value": ""}
    assert d.get(f"/queries/{query}/answers").json() == ["0", "1"]
    answers = d.get(f"/queries/{query}/answers?expand&simplify").json()
    by_study = {a["StudyInstanceUID"]: a for a in answers}
    ct = by_study[STUDY]
    assert (ct["ModalitiesInStudy"], ct["PatientID"], ct["QueryRetrieveLevel"], ct["RetrieveAETitle"]) == \
        ("CT", "QR1", "STUDY", "ORTHANCQR")
    n = answers.index(ct)
    full = d.get(f"/queries/{query}/answers/{n}/content").json()
    assert full["0020,000d"] == {"Name": "StudyInstanceUID", "Type": "String", "Value": STUDY}
    assert d.get(f"/queries/{query}/answers/{n}/content?short").json()["0020,000d"] == STUDY
    assert d.get(f"/queries/{query}/answers?expand&short").json()[n]["0010,0020"] == "QR1"
    assert d.get(f"/queries/{query}/answers/{n}").json() == ["content", "retrieve", "query-series", "query-instances"]
    assert d.get(f"/queries/{query}/answers/7/content").status_code == 400
    assert d.get(f"/queries/{query}/answers/x/content").status_code == 400
    child = d.post(f"/queries/{query}/answers/{n}/query-instances", json.dumps({"Query": {"InstanceNumber": ""}}))
    child = child.json()["ID"]
    assert d.get(f"/queries/{child}/level").text == "Instance"
    assert d.get(f"/queries/{child}/query?simplify").json() == {"InstanceNumber": "", "StudyInstanceUID": STUDY}
    instances = d.get(f"/queries/{child}/answers?expand&simplify").json()
    assert sorted(a["SOPInstanceUID"] for a in instances) == [f"{STUDY}.1.{i}" for i in range(3)]
    assert d.post(f"/queries/{query}/answers/{n}/query-studies", "{}").status_code == 404
    d.stop()
    d.start()  # the queries are rows of the index
    assert d.get("/queries").json() == [query, child]
    for _ in range(2):
        d.post("/modalities/orthanc/query", json.dumps({"Level": "Patient", "Query": {}}))
    kept = d.get("/queries").json()
    assert len(kept) == 3 and query not in kept and child in kept
    assert d.delete(f"/queries/{child}").status_code == 200
    assert d.get(f"/queries/{child}").status_code == 404
    assert d.get("/queries/nope/answers").status_code == 404


def test_retrieve_move_and_get_from_orthanc(orthanc_and_us):
    """A query's answer retrieved (C-MOVE to ourselves: our SCP stores what Orthanc sends), as a
    DicomMoveScu job too; /modalities/{name}/move and /get (C-GET: the instances come back on our
    association, into our store); every instance arrives under Orthanc's ID, byte for byte when
    Orthanc sends it as it stored it."""
    orthanc, d, files, stored = orthanc_and_us
    query = d.post("/modalities/orthanc/query", json.dumps({"Level": "Series", "Query": {"Modality": "CT"}})).json()
    answer = d.post(f"/queries/{query['ID']}/answers/0/retrieve", "").json()
    assert (answer["RemoteAet"], answer["TargetAet"], answer["LocalAet"]) == ("ORTHANCQR", "OURS", "OURS")
    assert answer["Query"][0]["0020,000e"] == f"{STUDY}.1" and answer["Details"][0]["DimseErrorStatus"] == 0
    for item, data in zip(stored[:3], files[:3], strict=True):
        ours = d.get(f"/instances/{item['ID']}/file")
        assert ours.status_code == 200 and dataset_bytes(ours.content) == dataset_bytes(data)
    mr = stored[3]
    mr_study = requests.get(f"{orthanc.url}/studies/{mr['ParentStudy']}", timeout=10).json()
    study_uid = mr_study["MainDicomTags"]["StudyInstanceUID"]
    job = d.post("/modalities/orthanc/get", json.dumps({"Level": "Study", "Resources": [
        {"StudyInstanceUID": study_uid}], "Synchronous": False})).json()
    done = wait_job(d, job["ID"])
    assert (done["Type"], done["State"]) == ("DicomGetScu", "Success"), done
    assert done["Content"]["Details"][0]["ReceivedInstancesIds"] == [mr["ID"]]
    # Orthanc's C-GET SCP (DCMTK) re-encodes what it sends: MR_small's trailing padding goes.
    assert same_content(d.get(f"/instances/{mr['ID']}/file").content, files[3])
    assert d.delete(f"/studies/{mr['ParentStudy']}").status_code == 200
    answer = d.post("/modalities/orthanc/move", json.dumps({"Level": "Study", "Resources": [
        {"StudyInstanceUID": study_uid}], "TargetAet": "OURS"})).json()
    assert answer["Details"][0]["DimseErrorStatus"] == 0
    assert d.get(f"/instances/{mr['ID']}/file").status_code == 200
    r = d.post("/modalities/orthanc/move", json.dumps({"Level": "Study", "Resources": [
        {"StudyInstanceUID": "1.2.3.4"}]}))
    assert r.status_code == 422 and "0xC000" in r.json()["Details"]
    job = d.post(f"/queries/{query['ID']}/retrieve", json.dumps({"TargetAet": "OURS", "Synchronous": False})).json()
    done = wait_job(d, job["ID"])
    assert (done["Type"], done["State"], done["Content"]["TargetAet"]) == ("DicomMoveScu", "Success", "OURS")
    answer = d.post(f"/queries/{query['ID']}/retrieve", json.dumps({"RetrieveMethod": "C-GET"})).json()
    assert sorted(answer["Details"][0]["ReceivedInstancesIds"]) == sorted(s["ID"] for s in stored[:3])
    # Our store to Orthanc, the other way round.
    ct_small = d.store(CT_SMALL)
    d.put("/modalities/orthanc", json.dumps(["ORTHANCQR", "127.0.0.1", orthanc.dicom_port]))
    assert d.post("/modalities/orthanc/store", ct_small["ID"]).json()["InstancesCount"] == 1
    theirs = requests.get(f"{orthanc.url}/instances/{ct_small['ID']}/file", timeout=10).content
    assert dataset_bytes(theirs) == dataset_bytes(Path(CT_SMALL).read_bytes())


def test_get_offers_storage_classes_with_the_scp_role(make_daemon):
    """C-GET proposes the common storage SOP classes with the SCP role (or only SOPClassesInStudy),
    and what comes back is stored through the ingest (our SCP is off: it is not needed)."""
    data = make_ct(patient_id="GET1", study_uid=STUDY, series_uid=f"{STUDY}.9", sop_uid=f"{STUDY}.9.1")
    proposed: list[int] = []

    def on_get(event):
        # The storage contexts: those where this SCP is the storage SCU (the role we gave it).
        proposed.append(len([cx for cx in event.assoc.accepted_contexts if not cx.as_scp]))
        yield 1
        yield 0xFF00, pydicom.dcmread(io.BytesIO(data))

    ae = AE("GETTER")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
    for cx in StoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, scu_role=True, scp_role=True)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_GET, on_get)])
    try:
        d = scu_daemon(make_daemon, {"getter": ["GETTER", "127.0.0.1", port]})
        answer = d.post("/modalities/getter/get", json.dumps({"Level": "Study", "Resources": [
            {"StudyInstanceUID": STUDY}]})).json()
        [received] = answer["Details"][0]["ReceivedInstancesIds"]
        assert answer["ReceivedInstancesCount"] == 1
        assert d.get(f"/instances/{received}/simplified-tags").json()["PatientID"] == "GET1"
        # pynetdicom's SCP picked implicit VR: the same attributes, re-encoded by it.
        assert pydicom.dcmread(io.BytesIO(d.get(f"/instances/{received}/file").content)) == \
            pydicom.dcmread(io.BytesIO(data))
        d.post("/modalities/getter/get", json.dumps({"Level": "Study", "Resources": [
            {"StudyInstanceUID": STUDY, "SOPClassesInStudy": CTImageStorage}]}))
        assert proposed[0] > 50 and proposed[-1] == 1
    finally:
        server.shutdown()


def test_associations_are_kept_for_the_next_store(make_daemon, pynetdicom_scp):
    """``DicomAssociationCloseDelay``: stores one after the other to one modality share one association,
    released once idle for the delay or when the daemon stops; with 0, each store has its own."""
    opened, released, stored = [], [], []

    def on_store(event):
        stored.append(event.request.AffectedSOPInstanceUID)
        return 0x0000

    handlers = [(evt.EVT_CONN_OPEN, lambda _e: opened.append(1)), (evt.EVT_RELEASED, lambda _e: released.append(1)),
                (evt.EVT_C_STORE, on_store)]
    port = pynetdicom_scp("KEEPER", [CTImageStorage], handlers)
    files = [make_ct(sop_uid=f"{STUDY}.9.{i}", study_uid=STUDY, series_uid=f"{STUDY}.9") for i in range(4)]
    kept = scu_daemon(make_daemon, {"keeper": ["KEEPER", "127.0.0.1", port]}, DicomAssociationCloseDelay=2)
    ids = [kept.store(data)["ID"] for data in files]
    for public_id in ids[:3]:
        assert kept.post("/modalities/keeper/store", public_id).json()["InstancesCount"] == 1
    assert (len(stored), len(opened), len(released)) == (3, 1, 0)
    time.sleep(3.5)
    assert len(released) == 1  # idle for the delay
    assert kept.post("/modalities/keeper/store", ids[3]).json()["InstancesCount"] == 1
    assert (len(opened), len(released)) == (2, 1)
    kept.stop()
    time.sleep(0.5)
    assert len(released) == 2  # released by the daemon as it stopped, not aborted

    each = scu_daemon(make_daemon, {"keeper": ["KEEPER", "127.0.0.1", port]}, DicomAssociationCloseDelay=0)
    for data in files[:2]:
        assert each.post("/modalities/keeper/store", each.store(data)["ID"]).json()["InstancesCount"] == 1
    assert (len(opened), len(released), len(stored)) == (4, 4, 6)
