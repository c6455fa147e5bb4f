"""The default QIDO-RS attributes that are not main tags (Rows, Columns, BitsAllocated, the performed
procedure step's start, RequestAttributesSequence) kept apart at ingest (dicom/stored_json.py), each
series keeping those of the instance that made it, on
the suite's index engine: a search gives the same answers from them as from the whole stored JSON,
instances stored before they were kept apart are answered from the stored JSON and get them later,
and attributes beyond them still come from the stored JSON."""
from __future__ import annotations

import json

import pytest_twisted
from pydicom.dataset import Dataset

from dicomweb_daemon.dicom.qido_model import default_fields
from dicomweb_daemon.dicom.stored_json import QIDO_EXTRAS
from dicomweb_daemon.index.qido import _plan
from dicomweb_daemon.index.writes import Origin
from dicomweb_daemon.service import MaintenanceService
from dicomweb_daemon.storage.sources import BytesSource
from dicomweb_daemon.threads import in_db
from dicomweb_daemon.web.dicomweb.qido import parse_query
from tests.conftest import local_daemon_in
from tests.dicom_files import make_ct
from tests.postgres import index_config

STUDY = "1.2.826.0.1.3680043.8.498.4242"


def test_the_extras_are_what_default_searches_read_from_the_stored_json():
    from pydicom.datadict import tag_for_keyword

    read = set()
    for level in (1, 2, 3):
        for study_key in (False, True):
            for series_key in (False, True):
                fields = tuple(tag_for_keyword(kw) for kw in default_fields(level, study_key, series_key))
                plan = _plan(level, fields, False)
                read |= set(plan.meta_keys)
                assert plan.extras_suffice
    assert read == set(QIDO_EXTRAS)


def _request(uri: bytes):
    return type("Request", (), {"uri": uri, "args": {}})()


async def _search(d, level: int, uri: bytes = b"/x", series: str | None = None) -> list[dict]:
    q = parse_query(_request(uri), level, STUDY, series, False)
    q.charset = "ISO_IR 100"
    return await in_db(d.index.qido, q)


def _stored_extras(d) -> list:
    return [row[0] for row in d.index.db.execute("SELECT qido_extras FROM instances ORDER BY internal").fetchall()]


def _series_extras(d) -> list:
    return [row[0] for row in d.index.db.execute("SELECT qido_extras FROM series_info ORDER BY internal").fetchall()]


@pytest_twisted.ensureDeferred
async def test_searches_answer_the_same_from_the_extras_before_and_after_they_are_kept(local_daemon):
    d = local_daemon
    step = Dataset()
    step.RequestedProcedureID = "RP7"
    sources = [make_ct("EXTRAS", study_uid=STUDY, series_uid=f"{STUDY}.1", sop_uid=f"{STUDY}.1.{k}", instance_number=k,
                       extra={"PerformedProcedureStepStartDate": "20240102", "RequestAttributesSequence": [step],
                              "SliceThickness": "2.5"})
               for k in (1, 2)]
    results = await d.ingest.store([BytesSource(s) for s in sources], Origin("RestApi"))
    assert {r.status for r in results} == {"Success"}
    kept = [json.loads(bytes(e)) for e in _stored_extras(d)]
    assert [sorted(k) for k in kept] == [["00280010", "00280011", "00280100", "00400244", "00400275"]] * 2
    assert kept[0]["00400275"]["Value"][0]["00401001"]["Value"] == ["RP7"]
    # The series keeps those of the instance that made it, and a series search reads them there.
    assert [json.loads(bytes(e)) for e in _series_extras(d)] == [kept[0]]
    series, instances = await _search(d, 2), await _search(d, 3, series=f"{STUDY}.1")
    assert series[0]["00400244"] == {"vr": "DA", "Value": ["20240102"]}
    with d.index.transaction() as c:
        c.execute("UPDATE series_info SET qido_extras = ?", (b'{"00400244":{"vr":"DA","Value":["19990101"]}}',))
    assert (await _search(d, 2))[0]["00400244"] == {"vr": "DA", "Value": ["19990101"]}
    assert [i["00280010"] for i in instances] == [{"vr": "US", "Value": [64]}] * 2
    # An attribute beyond the extras comes from the stored JSON.
    more = await _search(d, 3, b"/x?includefield=SliceThickness", f"{STUDY}.1")
    assert [i["00180050"]["Value"] for i in more] == [[2.5]] * 2 and more[0]["00280011"] == instances[0]["00280011"]

    # Instances stored before the extras were kept apart: answered from the stored JSON, then kept.
    # Series made before they kept their own: answered from their first instance, then kept.
    with d.index.transaction() as c:
        c.execute("UPDATE instances SET qido_extras = NULL")
        c.execute("UPDATE series_info SET qido_extras = NULL")
        c.execute("DELETE FROM globals WHERE name IN ('QidoExtras', 'SeriesQidoExtras')")
    assert await _search(d, 2) == series and await _search(d, 3, series=f"{STUDY}.1") == instances
    service = MaintenanceService(d)
    service.running = True
    await service._keep_qido_extras(batch=1)
    assert [json.loads(bytes(e)) for e in _stored_extras(d)] == kept
    assert [json.loads(bytes(e)) for e in _series_extras(d)] == [kept[0]]
    assert await _search(d, 2) == series and await _search(d, 3, series=f"{STUDY}.1") == instances
    # Noted as done: later starts do not look again.
    with d.index.transaction() as c:
        c.execute("UPDATE instances SET qido_extras = NULL")
        c.execute("UPDATE series_info SET qido_extras = NULL")
    assert await in_db(d.index.qido_extras_missing, 0, 10) is None
    assert await in_db(d.index.series_extras_missing, 0, 10) is None


def test_an_index_made_before_the_extras_gets_their_column(tmp_path):
    """Opened again after the columns (and the main tags' table in one piece) are dropped (an index of
    an earlier version), the index adds them."""
    config = index_config()
    d = local_daemon_in(tmp_path, config)
    with d.index.transaction() as c:
        c.execute("ALTER TABLE instances DROP COLUMN qido_extras")
        c.execute("ALTER TABLE series_info DROP COLUMN qido_extras")
        c.execute("DROP TABLE resource_tags")
    d = local_daemon_in(tmp_path, config)
    assert d.index.db.execute("SELECT COUNT(qido_extras) FROM instances").fetchone() == (0,)
    assert d.index.db.execute("SELECT COUNT(qido_extras) FROM series_info").fetchone() == (0,)
    assert d.index.db.execute("SELECT COUNT(*) FROM resource_tags").fetchone() == (0,)
