"""Wildcards inside values (``*HEAD*``, as a viewer's study list filters): found on either engine; on
PostgreSQL through the trigram indexes of pg_sql.TRIGRAMS, which an index made before them gets when
the daemon opens it."""
from __future__ import annotations

import json

from dicomweb_daemon.index.pg_sql import TRIGRAM_INDEXES
from tests.dicom_files import make_ct

STUDY = "1.2.826.0.1.3680043.8.498.8181"
DESCRIPTIONS = ("CT HEAD W/O CONTRAST", "MR KNEE RIGHT", "CTA HEAD AND NECK", "HEAD")


def _postgresql(daemon) -> bool:
    return bool(daemon.config.get("PostgreSQL", {}).get("ConnectionUri"))


def _trigram_indexes(daemon) -> set[str]:
    return {name for (name,) in daemon.sql("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%trgm'")}


def _found(daemon) -> tuple[list[str], list[str]]:
    qido = daemon.get("/dicom-web/studies?StudyDescription=*HEAD*&includefield=StudyDescription").json()
    find = daemon.post("/tools/find", json.dumps({"Level": "Study", "Expand": True,
                                                  "Query": {"StudyDescription": "*HEAD*"}})).json()
    return (sorted(a["00081030"]["Value"][0] for a in qido),
            sorted(s["MainDicomTags"]["StudyDescription"] for s in find))


def test_wildcards_inside_values_match_and_have_their_indexes(make_daemon):
    d = make_daemon()
    for i, description in enumerate(DESCRIPTIONS):
        d.store(make_ct(patient_id=f"TRG{i}", study_uid=f"{STUDY}.{i}", sop_uid=f"{STUDY}.{i}.1",
                        extra={"StudyDescription": description}))
    heads = sorted(x for x in DESCRIPTIONS if "HEAD" in x)
    assert _found(d) == (heads, heads)
    if not _postgresql(d):
        return
    assert _trigram_indexes(d) == set(TRIGRAM_INDEXES)
    d.stop()
    for name in TRIGRAM_INDEXES:  # as an index made before them
        d.sql(f"DROP INDEX {name}")
    d.start()
    assert _trigram_indexes(d) == set(TRIGRAM_INDEXES)
    assert _found(d) == (heads, heads)
