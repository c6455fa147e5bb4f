"""``/statistics`` (and /metrics) read running totals kept by the index's triggers (index/totals.py):
after stores, attachments, a modification, a split, deletions and the maintenance's folding, they
are what counting the tables gives, on either engine; an index made before the totals gets them
counted when it is opened."""
from __future__ import annotations

import json

from dicomweb_daemon.index.totals import PG_FOLD
from tests.conftest import wait_job
from tests.dicom_files import make_ct

STUDY = "1.2.826.0.1.3680043.8.498.7171"
COUNTED = {
    "CountPatients": "SELECT COUNT(*) FROM resources WHERE level = 0",
    "CountStudies": "SELECT COUNT(*) FROM resources WHERE level = 1",
    "CountSeries": "SELECT COUNT(*) FROM resources WHERE level = 2",
    "CountInstances": "SELECT COUNT(*) FROM resources WHERE level = 3",
    "TotalDiskSize": "SELECT (SELECT COALESCE(SUM(COALESCE(compressed_size, file_size)), 0) FROM instances) "
                     "+ (SELECT COALESCE(SUM(COALESCE(compressed_size, size)), 0) FROM attachments)",
    "TotalUncompressedSize": "SELECT (SELECT COALESCE(SUM(file_size), 0) FROM instances) "
                             "+ (SELECT COALESCE(SUM(size), 0) FROM attachments)",
}


def _counted(daemon) -> dict:
    return {key: int(daemon.sql(query)[0][0]) for key, query in COUNTED.items()}


def _read(daemon) -> dict:
    stats = daemon.get("/statistics").json()
    return {key: int(stats[key]) for key in COUNTED}


def test_the_totals_follow_every_change(daemon):
    items = [daemon.store(make_ct(patient_id=f"TOT{p}", study_uid=f"{STUDY}.{p}", series_uid=f"{STUDY}.{p}.{s}",
                                  sop_uid=f"{STUDY}.{p}.{s}.{i}", instance_number=i + 1))
             for p in range(3) for s in range(2) for i in range(3)]
    assert _read(daemon) == _counted(daemon)
    assert _read(daemon)["CountInstances"] >= 18
    instance = items[0]["ID"]
    assert daemon.put(f"/instances/{instance}/attachments/1025", b"x" * 1000).status_code == 200
    assert daemon.put(f"/instances/{instance}/attachments/1025", b"y" * 10).status_code == 200  # replaced
    assert _read(daemon) == _counted(daemon)
    job = daemon.post(f"/studies/{items[0]['ParentStudy']}/anonymize", json.dumps({"Asynchronous": True})).json()
    assert wait_job(daemon, job["ID"])["State"] == "Success"
    series = daemon.get(f"/studies/{items[6]['ParentStudy']}/series").json()[0]["ID"]
    assert daemon.post(f"/studies/{items[6]['ParentStudy']}/split", json.dumps({"Series": [series]})).status_code == 200
    assert _read(daemon) == _counted(daemon)
    assert daemon.delete(f"/instances/{instance}/attachments/1025").status_code == 200
    assert daemon.delete(f"/series/{items[3]['ParentSeries']}").status_code == 200
    assert daemon.delete(f"/patients/{items[12]['ParentPatient']}").status_code == 200
    assert _read(daemon) == _counted(daemon)
    metrics = daemon.get("/metrics").text
    assert f'dicomweb_resources{{level="Instances"}} {float(_counted(daemon)["CountInstances"])}' in metrics


def test_the_rows_of_differences_fold_into_one(daemon):
    """PostgreSQL keeps a row of differences per writing statement; folding them (the maintenance's
    work) leaves one row and the same totals. (SQLite keeps one row from the start.)"""
    if not daemon.config.get("PostgreSQL", {}).get("ConnectionUri"):
        assert daemon.sql("SELECT COUNT(*) FROM totals")[0][0] == 1
        return
    for i in range(3):
        daemon.store(make_ct(patient_id="FOLD", study_uid=f"{STUDY}.5", series_uid=f"{STUDY}.5.1",
                             sop_uid=f"{STUDY}.5.1.{i}", instance_number=i + 1))
    before = _read(daemon)
    daemon.sql(PG_FOLD)
    assert daemon.sql("SELECT COUNT(*) FROM totals_delta")[0][0] == 1
    assert _read(daemon) == before == _counted(daemon)


def test_an_index_made_before_the_totals_counts_them_when_opened(make_daemon):
    d = make_daemon()
    for i in range(4):
        d.store(make_ct(patient_id="OLD", study_uid=f"{STUDY}.9", series_uid=f"{STUDY}.9.1",
                        sop_uid=f"{STUDY}.9.1.{i}", instance_number=i + 1))
    expected = _counted(d)
    d.stop()
    postgresql = bool(d.config.get("PostgreSQL", {}).get("ConnectionUri"))
    if postgresql:
        d.sql("DROP TABLE totals_delta")
        for table in ("resources", "instances", "attachments"):
            for event in ("insert", "delete", "update"):
                d.sql(f"DROP TRIGGER IF EXISTS totals_{table}_{event} ON {table}")
    else:
        for (name,) in d.sql("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'totals_%'"):
            d.sql(f"DROP TRIGGER {name}")
        d.sql("DROP TABLE totals")
    d.start()
    assert _read(d) == expected
    d.store(make_ct(patient_id="OLD", study_uid=f"{STUDY}.9", series_uid=f"{STUDY}.9.1", sop_uid=f"{STUDY}.9.1.9"))
    assert _read(d) == _counted(d) and _read(d)["CountInstances"] == expected["CountInstances"] + 1
