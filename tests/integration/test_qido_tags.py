"""Each resource's main tags kept in one piece (resource_tags), on the suite's index engine:
written at ingest and when main tags are set again, equal to its rows of main_tags; a search reads
its results' attributes from them, and answers the same for resources made before they were kept
(from their rows of main_tags), which get them later, once."""
from __future__ import annotations

import json

import pytest_twisted

from dicomweb_daemon.dicom.parsing import parse_buffer
from dicomweb_daemon.index.writes import Origin
from dicomweb_daemon.service import MaintenanceService
from dicomweb_daemon.storage.sources import BytesSource
from dicomweb_daemon.threads import in_db, in_db_write
from dicomweb_daemon.web.dicomweb.qido import parse_query
from tests.dicom_files import make_ct

STUDY = "1.2.826.0.1.3680043.8.498.5151"


def _kept(d) -> dict[int, dict | None]:
    rows = d.index.db.execute("SELECT r.internal, k.tags_json FROM resources r "
                              "LEFT JOIN resource_tags k ON k.internal = r.internal ORDER BY r.internal").fetchall()
    return {internal: None if text is None else json.loads(text) for internal, text in rows}


def _rows(d) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for internal, tag, value in d.index.db.execute("SELECT internal, tag, value FROM main_tags").fetchall():
        out.setdefault(internal, {})[tag] = value
    return out


async def _searches(d) -> list:
    """A study search, a study's series, a series' instances, each with every attribute it has."""
    out = []
    for level, study, series in ((1, None, None), (2, STUDY, None), (3, STUDY, f"{STUDY}.1")):
        request = type("Request", (), {"uri": b"/x?includefield=all", "args": {}})()
        q = parse_query(request, level, study, series, False)
        q.charset = "ISO_IR 100"
        out.append(await in_db(d.index.qido, q))
    return out


async def _store(d, **kw) -> None:
    sources = [make_ct(patient_name="TAGS^ONE", study_uid=STUDY, series_uid=f"{STUDY}.1", sop_uid=f"{STUDY}.1.{k}",
                       instance_number=k, **kw) for k in (1, 2)]
    results = await d.ingest.store([BytesSource(s) for s in sources], Origin("RestApi"))
    assert {r.status for r in results} == {"Success"}


@pytest_twisted.ensureDeferred
async def test_resources_keep_their_main_tags_in_one_piece_and_searches_read_them(local_daemon):
    d = local_daemon
    await _store(d, extra={"StudyDescription": "FIRST", "SeriesDescription": "AXIAL"})
    kept, rows = _kept(d), _rows(d)
    assert len(kept) == 5 and kept == rows  # a patient, a study, a series, two instances
    assert any(tags.get("StudyDescription") == "FIRST" for tags in kept.values())
    searches = await _searches(d)
    assert searches[0][0]["00081030"] == {"vr": "LO", "Value": ["FIRST"]}
    assert searches[1][0]["0008103E"] == {"vr": "LO", "Value": ["AXIAL"]}
    assert [r["00200013"]["Value"] for r in searches[2]] == [[1], [2]]
    # What a search reads is the piece (not the rows).
    study = next(internal for internal, tags in kept.items() if "StudyDescription" in tags)
    with d.index.transaction() as c:
        c.execute("UPDATE resource_tags SET tags_json = ? WHERE internal = ?",
                  (json.dumps({**kept[study], "StudyDescription": "ONE PIECE"}), study))
    assert (await _searches(d))[0][0]["00081030"] == {"vr": "LO", "Value": ["ONE PIECE"]}

    # Main tags set again from an instance (a reconstruction): kept in one piece again.
    again = make_ct(patient_name="TAGS^TWO", study_uid=STUDY, series_uid=f"{STUDY}.1", sop_uid=f"{STUDY}.1.2",
                    instance_number=2, extra={"StudyDescription": "SECOND", "SeriesDescription": "AXIAL"})
    await in_db_write(d.index.set_main_tags, [parse_buffer(again)])
    assert _kept(d) == _rows(d)
    renamed = await _searches(d)
    assert renamed[0][0]["00081030"] == {"vr": "LO", "Value": ["SECOND"]}
    assert renamed[0][0]["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "TAGS^TWO"}]}


@pytest_twisted.ensureDeferred
async def test_resources_made_before_are_answered_from_their_rows_then_get_their_main_tags_once(local_daemon):
    d = local_daemon
    await _store(d, extra={"StudyDescription": "BEFORE"})
    kept, searches = _kept(d), await _searches(d)
    with d.index.transaction() as c:
        c.execute("DELETE FROM resource_tags")
        c.execute("DELETE FROM globals WHERE name = 'TagsJson'")
    assert await _searches(d) == searches
    service = MaintenanceService(d)
    service.running = True
    await service._keep_qido_extras(batch=2)
    assert _kept(d) == kept
    assert await _searches(d) == searches
    # Noted as done: later starts do not look again.
    assert await in_db(d.index.tags_missing, 0, 10) is None
