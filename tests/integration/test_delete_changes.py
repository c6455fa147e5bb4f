"""Deleting resources at every level, and the changes and exports logs."""
from __future__ import annotations

import time

import pytest
from pydicom.uid import generate_uid

from tests.dicom_files import make_ct

pytestmark = pytest.mark.storage  # runs again with the files in an S3 bucket (tests/object_store.py)


def test_delete_instance_keeps_parents_while_they_have_children(make_daemon):
    """Deleting one of two instances answers the series as RemainingAncestor and removes the file."""
    d = make_daemon()
    study, series = generate_uid(), generate_uid()
    a = d.store(make_ct("DEL-1", study_uid=study, series_uid=series))
    b = d.store(make_ct("DEL-1", study_uid=study, series_uid=series))
    assert len(d.stored_files()) == 2
    r = d.delete(f"/instances/{a['ID']}")
    assert r.status_code == 200
    assert r.json()["RemainingAncestor"] == {"ID": b["ParentSeries"], "Path": f"/series/{b['ParentSeries']}",
                                             "Type": "Series"}
    assert d.get(f"/instances/{a['ID']}").status_code == 404
    assert len(d.stored_files()) == 1


def test_deleting_last_instance_removes_empty_parents(make_daemon):
    """Parents that become empty are removed too, up to the patient."""
    d = make_daemon()
    a = d.store(make_ct("DEL-2"))
    r = d.delete(f"/instances/{a['ID']}")
    assert r.json()["RemainingAncestor"] is None
    for path in (f"/series/{a['ParentSeries']}", f"/studies/{a['ParentStudy']}", f"/patients/{a['ParentPatient']}"):
        assert d.get(path).status_code == 404
    assert d.get("/patients").json() == []
    assert d.stored_files() == set()


def test_delete_study_and_patient_levels(make_daemon):
    """DELETE works at study and patient level and removes every file below."""
    d = make_daemon()
    a = d.store(make_ct("DEL-3"))
    b = d.store(make_ct("DEL-3"))  # another study of the same patient
    r = d.delete(f"/studies/{a['ParentStudy']}")
    assert r.json()["RemainingAncestor"]["ID"] == a["ParentPatient"]
    assert d.get(f"/studies/{b['ParentStudy']}").status_code == 200
    assert d.delete(f"/patients/{a['ParentPatient']}").json()["RemainingAncestor"] is None
    assert d.stored_files() == set()


def test_delete_unknown_or_wrong_level_is_404(make_daemon):
    """An unknown ID, or an ID of another level, answers 404 in Orthanc's error shape."""
    d = make_daemon()
    a = d.store(make_ct("DEL-4"))
    r = d.delete("/instances/00000000-00000000-00000000-00000000-00000000")
    assert r.status_code == 404
    body = r.json()
    assert body["HttpStatus"] == 404 and body["Method"] == "DELETE" and body["Uri"].startswith("/instances/")
    assert d.delete(f"/studies/{a['ID']}").status_code == 404
    assert d.get(f"/instances/{a['ID']}").status_code == 200


def test_bulk_delete(make_daemon):
    """POST /tools/bulk-delete removes every listed resource."""
    d = make_daemon()
    a, b, c = (d.store(make_ct(f"BULK-{i}")) for i in range(3))
    r = d.post("/tools/bulk-delete", json={"Resources": [a["ParentPatient"], b["ID"]]})
    assert r.status_code == 200
    assert d.get("/patients").json() == [c["ParentPatient"]]
    assert d.post("/tools/bulk-delete", json={"Resources": "nope"}).status_code == 400


def test_changes_log(make_daemon):
    """/changes lists New* entries with Seq, paging with since/limit, Done and Last; the entries of a
    deleted resource go with it (no "Deleted" entry stays, as in Orthanc), Last stays the highest."""
    d = make_daemon()
    a = d.store(make_ct("CHG-1"))
    changes = d.get("/changes").json()
    types = [c["ChangeType"] for c in changes["Changes"]]
    assert types == ["NewInstance", "NewSeries", "NewStudy", "NewPatient"]  # Orthanc's order
    assert changes["Done"] is True and changes["Last"] == changes["Changes"][-1]["Seq"]
    first = changes["Changes"][-1]
    assert first["ID"] == a["ParentPatient"] and first["Path"] == f"/patients/{a['ParentPatient']}"
    assert first["ResourceType"] == "Patient" and len(first["Date"]) == 15
    page = d.get("/changes?since=1&limit=2").json()
    assert [c["Seq"] for c in page["Changes"]] == [2, 3] and page["Done"] is False and page["Last"] == 3
    d.delete(f"/instances/{a['ID']}")
    after = d.get("/changes").json()
    assert after["Changes"] == [] and after["Done"] is True and after["Last"] == changes["Last"]
    last = d.get("/changes?last").json()
    assert last["Changes"] == [] and last["Last"] == changes["Last"]
    b = d.store(make_ct("CHG-2"))
    assert [c["Seq"] for c in d.get("/changes").json()["Changes"]] == [changes["Last"] + n for n in (1, 2, 3, 4)]
    assert d.get("/changes?last").json()["Changes"][0]["ID"] == b["ParentPatient"]
    assert d.delete("/changes").status_code == 200
    assert d.get("/changes").json()["Changes"] == []


def test_stable_changes_after_stable_age(make_daemon):
    """After StableAge seconds without new instances, resources become stable and it is logged."""
    d = make_daemon({"StableAge": 1})
    a = d.store(make_ct("STABLE-1"))
    assert d.get(f"/series/{a['ParentSeries']}").json()["IsStable"] is False
    deadline = time.time() + 15
    while time.time() < deadline and not d.get(f"/series/{a['ParentSeries']}").json()["IsStable"]:
        time.sleep(0.2)
    assert d.get(f"/studies/{a['ParentStudy']}").json()["IsStable"] is True
    types = [c["ChangeType"] for c in d.get("/changes").json()["Changes"]]
    assert types[-3:] == ["StableSeries", "StableStudy", "StablePatient"]


def test_exports_log_is_empty_and_clearable(make_daemon):
    """/exports answers Orthanc's shape, and DELETE clears it."""
    d = make_daemon()
    body = d.get("/exports").json()
    assert body == {"Exports": [], "Done": True, "Last": 0}
    assert d.delete("/exports").status_code == 200


def test_series_completion_status(make_daemon):
    """A series announcing its size (ImagesInAcquisition x NumberOfTemporalPositions) is Missing until
    every IndexInSeries came, then Complete (logged as CompletedSeries), then Inconsistent past it;
    CardiacNumberOfImages of 0 says nothing (Unknown), as in Orthanc."""
    d = make_daemon()
    silent = d.store(make_ct("SER-0", extra={"CardiacNumberOfImages": 0, "ImagesInAcquisition": 27}))
    assert d.get(f"/series/{silent['ParentSeries']}").json()["Status"] == "Unknown"
    study, series = "1.2.3.888", "1.2.3.888.1"

    def store(number: int) -> dict:
        return d.store(make_ct("SER-1", study_uid=study, series_uid=series, instance_number=number,
                               extra={"ImagesInAcquisition": 2, "NumberOfTemporalPositions": 2}))

    def completed() -> int:
        return sum(c["ChangeType"] == "CompletedSeries" for c in d.get("/changes?limit=1000").json()["Changes"])

    for number in (1, 2, 3):
        a = store(number)
        described = d.get(f"/series/{a['ParentSeries']}").json()
        assert (described["Status"], described["ExpectedNumberOfInstances"]) == ("Missing", 4)
    assert completed() == 0
    store(4)
    assert d.get(f"/series/{a['ParentSeries']}").json()["Status"] == "Complete"
    assert completed() == 1
    store(5)
    assert d.get(f"/series/{a['ParentSeries']}").json()["Status"] == "Inconsistent"
    assert completed() == 1


def test_log_levels(make_daemon):
    """/tools/log-level and /tools/log-level-{category} read and set Orthanc's levels; an unknown
    level is 400, an unknown category 404."""
    d = make_daemon()
    assert d.get("/tools/log-level").text == "default"
    assert d.put("/tools/log-level", b"verbose").status_code == 200
    assert d.get("/tools/log-level").text == "verbose" and d.get("/tools/log-level-http").text == "verbose"
    assert d.put("/tools/log-level-sqlite", b"trace").status_code == 200
    assert d.get("/tools/log-level-sqlite").text == "trace"
    assert d.put("/tools/log-level", b"nope").status_code == 400
    assert d.put("/tools/log-level-nope", b"default").status_code == 404
