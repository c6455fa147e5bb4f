"""Two daemons on one index and one storage (PostgreSQL when the suite runs on it, else one SQLite file
on this machine): what one stores, deletes or starts, the other sees at once, with one sequence of
changes."""
from __future__ import annotations

import json

from tests.dicom_files import make_ct


def test_two_daemons_serve_one_store(make_daemon, tmp_path):
    shared = {"StorageDirectory": str(tmp_path / "shared"), "IndexDirectory": str(tmp_path / "shared")}
    a = make_daemon(shared)
    b = make_daemon({**shared, **({"PostgreSQL": a.config["PostgreSQL"]} if "PostgreSQL" in a.config else {})},
                    name="b")
    assert a.config.get("PostgreSQL") == b.config.get("PostgreSQL")
    stored = a.store(make_ct("SHARED-1"))
    assert b.get("/instances").json() == [stored["ID"]]
    assert b.get(f"/instances/{stored['ID']}/file").content == a.get(f"/instances/{stored['ID']}/file").content
    assert b.get("/changes").json()["Last"] == a.get("/changes").json()["Last"] > 0

    second = b.store(make_ct("SHARED-2"))
    assert sorted(a.get("/patients").json()) == sorted([stored["ParentPatient"], second["ParentPatient"]])
    job = a.post(f"/studies/{stored['ParentStudy']}/archive", json.dumps({"Asynchronous": True})).json()["ID"]
    assert b.get(f"/jobs/{job}").json()["ID"] == job  # a job is one row of the shared index

    assert b.delete(f"/patients/{stored['ParentPatient']}").status_code == 200
    assert a.get(f"/instances/{stored['ID']}").status_code == 404
    assert a.get("/statistics").json()["CountInstances"] == 1
