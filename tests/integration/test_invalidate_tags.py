"""``POST /tools/invalidate-tags``: every stored instance's summary (the DICOM JSON metadata and frame
ranges precomputed at ingest) derived again from its file, with what the daemon knows now: after a
change of ``DefaultEncoding``, a file without SpecificCharacterSet reads in the new one."""
from __future__ import annotations

import io

from pydicom import dcmread

from tests.dicom_files import make_ct

LUKASZ_LATIN2 = "Łukasz^Źdźbło".encode("iso8859_2")


def _latin2_file_without_charset(sop_uid: str) -> bytes:
    ds = dcmread(io.BytesIO(make_ct(sop_uid=sop_uid)))
    ds.PatientName = LUKASZ_LATIN2.decode("latin-1")  # the bytes as they are, no charset said
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _names(d, study: str) -> list[str]:
    body = d.get(f"/dicom-web/studies/{study}/metadata").json()
    return [item["00100010"]["Value"][0]["Alphabetic"] for item in body]


def test_invalidate_tags_rebuilds_metadata_with_the_encoding_now_in_force(make_daemon):
    d = make_daemon({"DefaultEncoding": "Latin1"})
    data = _latin2_file_without_charset("1.2.826.0.1.3680043.8.498.777.1")
    study_uid = dcmread(io.BytesIO(data)).StudyInstanceUID
    item = d.store(data)
    assert _names(d, study_uid) == [LUKASZ_LATIN2.decode("latin-1")]  # read as Latin-1 at ingest (and cached)
    frames_before = d.get(f"/instances/{item['ID']}/frames").json()

    assert "invalidate-tags" in d.get("/tools").json()
    assert d.put("/tools/default-encoding", "Latin2").status_code == 200
    assert _names(d, study_uid) == [LUKASZ_LATIN2.decode("latin-1")]  # the summary is the one of the ingest
    r = d.post("/tools/invalidate-tags")
    assert r.status_code == 200 and r.json() == {}
    assert _names(d, study_uid) == ["Łukasz^Źdźbło"]
    assert d.get(f"/instances/{item['ID']}/frames").json() == frames_before
    assert d.get(f"/instances/{item['ID']}/frames/0/raw").content == \
        dcmread(io.BytesIO(data)).PixelData  # frame ranges derived again point at the same bytes
    assert d.get("/tools/invalidate-tags").status_code == 405
