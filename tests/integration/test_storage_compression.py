"""Storage compression as Orthanc has it: ``POST .../attachments/{name}/compress`` and ``/uncompress``
change how a file is stored (the DICOM file of an instance, or a user-defined attachment), the
attachment's facts and the statistics tell the stored bytes from the content, every read answers
the same for a compressed file, and ``StorageCompression: true`` compresses new files at ingest."""
from __future__ import annotations

import hashlib
import io
import re
import struct
import zipfile
import zlib
from pathlib import Path

import pydicom
import pytest
import requests

from tests.dicom_files import CT_SMALL, MULTIFRAME, make_ct
from tests.dicomweb_answers import renamed

CONFIG = {"UserContentType": {"report": 1030}}
DICOM_ANY = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def inflate(stored: bytes) -> bytes:
    """Orthanc's "zlib with size": 8 bytes of little-endian size, then a zlib stream."""
    (size,) = struct.unpack("<Q", stored[:8])
    content = zlib.decompress(stored[8:])
    assert len(content) == size
    return content


def stored_files(daemon) -> dict[str, bytes]:
    """The files of the storage folder, by name (``ab/cd/uuid``)."""
    return {p.name: p.read_bytes() for p in Path(daemon.data).glob("*/*/*") if p.parent.parent.name != "tmp"}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    from tests.conftest import Daemon

    d = Daemon(tmp_path_factory.mktemp("compression"), CONFIG).start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A daemon that compresses every new file (Orthanc's StorageCompression)."""
    from tests.conftest import Daemon

    d = Daemon(tmp_path_factory.mktemp("packed"), {**CONFIG, "StorageCompression": True}).start()
    yield d
    d.stop()


def fact(daemon, path: str) -> str:
    r = daemon.get(path)
    assert r.status_code == 200, r.text
    return r.text


# -- compress / uncompress -----------------------------------------------------------------------------
def test_compress_and_uncompress_an_instance(daemon):
    """The DICOM file goes to a new, compressed file and back: size / md5 / data stay the content's,
    compressed-size / compressed-md5 / compressed-data are the stored bytes', the statistics count
    the stored bytes as disk size, verify-md5 passes each time, no change is logged, the revision
    (ETag) stays, and asking for the state a file is in already changes nothing."""
    original = Path(CT_SMALL).read_bytes()
    a = daemon.store(original)
    base = f"/instances/{a['ID']}/attachments/dicom"
    assert daemon.get(f"/instances/{a['ID']}/attachments").json() == ["dicom"]
    assert fact(daemon, base + "/is-compressed") == "0"
    assert daemon.get(base + "/compressed-data").content == original
    assert fact(daemon, base + "/compressed-size") == str(len(original))
    before = daemon.get("/statistics").json()
    series_before = daemon.get(f"/series/{a['ParentSeries']}/statistics").json()
    etag = daemon.get(base + "/info").headers["ETag"]
    uuid = fact(daemon, base + "/uuid")
    changes = daemon.get("/changes?since=0&limit=100").json()["Last"]

    assert daemon.post(base + "/compress").json() == {}
    assert fact(daemon, base + "/is-compressed") == "1"
    stored = daemon.get(base + "/compressed-data").content
    assert inflate(stored) == original and len(stored) < len(original)
    info = daemon.get(base + "/info")
    assert info.headers["ETag"] == etag
    assert info.json() == {"CompressedMD5": md5(stored), "CompressedSize": len(stored), "ContentType": 1,
                           "UncompressedMD5": md5(original), "UncompressedSize": len(original),
                           "Uuid": info.json()["Uuid"]}
    assert info.json()["Uuid"] != uuid
    assert (fact(daemon, base + "/size"), fact(daemon, base + "/md5")) == (str(len(original)), md5(original))
    assert (fact(daemon, base + "/compressed-size"), fact(daemon, base + "/compressed-md5")) == \
        (str(len(stored)), md5(stored))
    assert daemon.get(base + "/data").content == original
    assert daemon.post(base + "/verify-md5").status_code == 200
    assert stored_files(daemon)[info.json()["Uuid"]] == stored and uuid not in stored_files(daemon)
    after = daemon.get("/statistics").json()
    saved = len(original) - len(stored)
    assert int(after["TotalDiskSize"]) == int(before["TotalDiskSize"]) - saved
    assert after["TotalUncompressedSize"] == before["TotalUncompressedSize"]
    series = daemon.get(f"/series/{a['ParentSeries']}/statistics").json()
    assert int(series["DiskSize"]) == int(series_before["DiskSize"]) - saved
    assert int(series["DicomDiskSize"]) == len(stored)
    assert series["UncompressedSize"] == series["DicomUncompressedSize"] == str(len(original))

    compressed_uuid = info.json()["Uuid"]
    assert daemon.post(base + "/compress").status_code == 200  # already compressed: nothing changes
    assert fact(daemon, base + "/uuid") == compressed_uuid

    assert daemon.post(base + "/uncompress").json() == {}
    assert fact(daemon, base + "/is-compressed") == "0"
    assert daemon.get(base + "/compressed-data").content == original
    assert fact(daemon, base + "/compressed-md5") == md5(original)
    assert daemon.post(base + "/verify-md5").status_code == 200
    assert daemon.get("/statistics").json() == before
    assert daemon.get("/changes?since=0&limit=100").json()["Last"] == changes
    assert compressed_uuid not in stored_files(daemon)
    assert daemon.post(f"/instances/{a['ID']}/attachments/nope/compress").status_code == 404


def test_compress_a_user_attachment(daemon):
    """A user-defined attachment of a study is compressed and uncompressed the same way; its revision
    stays, and each change logs UpdatedAttachment, as Orthanc does."""
    a = daemon.store(make_ct("ATT-1"))
    study = a["ParentStudy"]
    report = b"a report that repeats itself " * 400
    assert daemon.put(f"/studies/{study}/attachments/report", report).status_code == 200
    base = f"/studies/{study}/attachments/report"
    etag = daemon.get(base + "/info").headers["ETag"]
    last = daemon.get("/changes?since=0&limit=1000").json()["Last"]
    stats = daemon.get(f"/studies/{study}/statistics").json()

    assert daemon.post(base + "/compress").status_code == 200
    assert fact(daemon, base + "/is-compressed") == "1"
    stored = daemon.get(base + "/compressed-data").content
    assert inflate(stored) == report
    assert daemon.get(base + "/data").content == report
    assert daemon.get(base + "/info").headers["ETag"] == etag
    assert fact(daemon, base + "/compressed-md5") == md5(stored)
    assert daemon.post(base + "/verify-md5").status_code == 200
    changes = daemon.get(f"/changes?since={last}&limit=100").json()["Changes"]
    assert [(c["ChangeType"], c["ID"]) for c in changes] == [("UpdatedAttachment", study)]
    packed_stats = daemon.get(f"/studies/{study}/statistics").json()
    assert int(packed_stats["DiskSize"]) == int(stats["DiskSize"]) - len(report) + len(stored)
    assert packed_stats["UncompressedSize"] == stats["UncompressedSize"]
    assert packed_stats["DicomDiskSize"] == stats["DicomDiskSize"]

    # A new version replaces the compressed file (stored as the daemon stores new files: as it came).
    assert daemon.put(base, b"short", headers={"If-Match": etag}).status_code == 200
    assert fact(daemon, base + "/is-compressed") == "0" and daemon.get(base + "/data").content == b"short"
    assert daemon.post(base + "/compress").status_code == 200
    assert daemon.post(base + "/uncompress").status_code == 200
    assert daemon.get(base + "/data").content == b"short"
    assert daemon.get(f"/studies/{study}/statistics").json()["DiskSize"] == \
        str(int(stats["DiskSize"]) - len(report) + len(b"short"))


# -- every read of a compressed instance ---------------------------------------------------------------
def _normalized(r) -> bytes:
    """An answer's body, with a multipart boundary (random per answer) replaced."""
    found = re.search(r'boundary="?([^";]+)"?', r.headers.get("Content-Type", ""))
    return r.content.replace(found.group(1).encode(), b"BOUNDARY") if found else r.content


def _zip_members(r) -> list[tuple[str, object]]:
    """The members of a ZIP answer; a DICOMDIR by its records (its own UID is new each time)."""
    z = zipfile.ZipFile(io.BytesIO(r.content))
    out: list[tuple[str, object]] = []
    for name in z.namelist():
        if name == "DICOMDIR":
            records = pydicom.dcmread(io.BytesIO(z.read(name))).DirectoryRecordSequence
            out.append((name, [record.to_json_dict() for record in records]))
        else:
            out.append((name, z.read(name)))
    return out


def _reads(daemon, a: dict, ds: pydicom.Dataset, frames: int) -> dict[str, object]:
    """Every way a client reads an instance's file, by name: what each answers."""
    i, study = a["ID"], a["ParentStudy"]
    uids = f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    octets = {"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'}
    gets = {
        "file": (f"/instances/{i}/file", {}),
        "file as DICOM JSON": (f"/instances/{i}/file", {"Accept": "application/dicom+json"}),
        "attachment data": (f"/instances/{i}/attachments/dicom/data", {}),
        "raw frame": (f"/instances/{i}/frames/{frames - 1}/raw", {}),
        "preview": (f"/instances/{i}/frames/0/preview", {}),
        "rendered": (f"/instances/{i}/frames/0/rendered", {}),
        "matlab": (f"/instances/{i}/frames/0/matlab", {}),
        "numpy": (f"/instances/{i}/numpy", {}),
        "tags": (f"/instances/{i}/tags", {}),
        "simplified tags": (f"/instances/{i}/simplified-tags", {}),
        "header": (f"/instances/{i}/header", {}),
        "content": (f"/instances/{i}/content/0010-0010", {}),
        "WADO-RS study": (f"/dicom-web/studies/{ds.StudyInstanceUID}", {"Accept": DICOM_ANY}),
        "WADO-RS instance": (uids, {"Accept": DICOM_ANY}),
        "WADO-RS transcoded": (uids, {"Accept": 'multipart/related; type="application/dicom"; '
                                                'transfer-syntax=1.2.840.10008.1.2'}),
        "WADO-RS frames": (uids + "/frames/" + ",".join(str(n) for n in range(1, frames + 1)), octets),
        "WADO-RS one frame": (uids + f"/frames/{frames}", octets),
        "WADO-RS converted frame": (uids + "/frames/1", {
            "Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.2'}),
        "WADO-RS converted frames": (uids + "/frames/" + ",".join(str(n) for n in range(1, frames + 1)), {
            "Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.2'}),
        "WADO-RS rendered": (uids + "/rendered", {"Accept": "image/png"}),
        "WADO-RS rendered frames": (uids + f"/frames/1,{frames}/rendered", {"Accept": "image/png"}),
        "WADO-RS pixel data": (uids + "/bulk/7fe00010", octets),
        "WADO-RS pixel data range": (uids + "/bulk/7fe00010", {**octets, "Range": "bytes=100-70000"}),
        "WADO-RS pixel data little endian": (uids + "/bulk/7fe00010", {"Accept": "application/octet-stream"}),
        "WADO-RS bulk": (uids + "/bulk/00100010", octets),
        "WADO-URI": (f"/wado?requestType=WADO&studyUID={ds.StudyInstanceUID}&seriesUID={ds.SeriesInstanceUID}"
                     f"&objectUID={ds.SOPInstanceUID}&contentType=application/dicom", {}),
        "WADO-URI JPEG": (f"/wado?requestType=WADO&studyUID={ds.StudyInstanceUID}&seriesUID={ds.SeriesInstanceUID}"
                          f"&objectUID={ds.SOPInstanceUID}&contentType=image/jpeg", {}),
    }
    out: dict[str, object] = {}
    for name, (path, headers) in gets.items():
        r = daemon.get(path, headers=headers)
        assert r.status_code in (200, 206), (name, r.status_code, r.text[:300])
        out[name] = (r.status_code, _normalized(r))
    out["archive"] = _zip_members(daemon.get(f"/studies/{study}/archive"))
    out["media"] = _zip_members(daemon.get(f"/studies/{study}/media"))
    out["archive transcoded"] = _zip_members(daemon.get(f"/studies/{study}/archive?transcode=1.2.840.10008.1.2"))
    return out


@pytest.mark.parametrize("name", ["CT_small", "multi-frame", "big (past sendfile's threshold)",
                                  "multi-frame big endian"])
def test_every_read_of_a_compressed_instance_answers_the_same(daemon, name):
    """Files, attachments, frames, images, tags, archives, WADO-RS (retrieve as stored, which goes
    through sendfile when big; transcoded; frames; rendered; bulk data whole and ranged) and WADO-URI
    answer byte for byte the same before and after the file is compressed, and after it is
    uncompressed again."""
    data = {"CT_small": Path(CT_SMALL).read_bytes(), "multi-frame": Path(MULTIFRAME).read_bytes(),
            "big (past sendfile's threshold)": make_ct("BIG-1", size=1024),
            "multi-frame big endian": renamed("emri_small_big_endian.dcm")[0]}[name]
    ds = pydicom.dcmread(io.BytesIO(data))
    a = daemon.store(data)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    plain = _reads(daemon, a, ds, frames)
    assert plain["file"] == (200, data)
    assert daemon.post(f"/instances/{a['ID']}/attachments/dicom/compress").status_code == 200
    assert fact(daemon, f"/instances/{a['ID']}/attachments/dicom/is-compressed") == "1"
    packed = _reads(daemon, a, ds, frames)
    for key in plain:
        assert packed[key] == plain[key], key
    assert daemon.post(f"/instances/{a['ID']}/attachments/dicom/uncompress").status_code == 200
    assert _reads(daemon, a, ds, frames) == plain


def test_head_and_ranges_of_a_compressed_file(daemon):
    """HEAD of a compressed file announces its content's length; WADO-RS pixel data ranges of a big
    compressed file are slices of the content."""
    data = make_ct("BIG-2", size=800)
    ds = pydicom.dcmread(io.BytesIO(data))
    a = daemon.store(data)
    daemon.post(f"/instances/{a['ID']}/attachments/dicom/compress")
    head = requests.head(daemon.url + f"/instances/{a['ID']}/file", timeout=60)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(data))
    uids = f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    r = daemon.get(uids + "/bulk/7fe00010", headers={"Accept": "application/octet-stream", "Range": "bytes=10-1100009"})
    assert r.status_code == 206 and r.content == ds.PixelData[10:1100010]


# -- StorageCompression at ingest -------------------------------------------------------------------------
def test_storage_compression_compresses_new_files(packed):
    """With StorageCompression, files from POST /instances (single file, ZIP), STOW-RS (small and big
    parts) and user attachments are stored compressed; every answer gives the content; the
    statistics count the stored bytes; a file can be uncompressed."""
    from tests.integration.test_stow import multipart, stow

    assert packed.get("/system").json()["StorageCompression"] is True
    single = Path(CT_SMALL).read_bytes()
    zipped = [make_ct("ZIP-1"), make_ct("ZIP-2")]
    stowed = [make_ct("STOW-1", size=32), make_ct("STOW-2", size=1024)]
    first = packed.store(single)
    ids = [first["ID"]]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for n, data in enumerate(zipped):
            z.writestr(f"f{n}.dcm", data)
    r = packed.post("/instances", archive.getvalue())
    assert r.status_code == 200, r.text
    ids += [x["ID"] for x in r.json()]
    assert stow(packed, multipart(stowed)).status_code == 200
    for data in stowed:
        sop = pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID
        [found] = [x for x in packed.post("/tools/lookup", sop.encode()).json() if x["Type"] == "Instance"]
        ids.append(found["ID"])
    contents = [single, *zipped, *stowed]
    on_disk = stored_files(packed)
    for i, data in zip(ids, contents, strict=True):
        base = f"/instances/{i}/attachments/dicom"
        assert fact(packed, base + "/is-compressed") == "1"
        assert packed.get(f"/instances/{i}/file").content == data
        stored = on_disk[fact(packed, base + "/uuid")]
        assert inflate(stored) == data and packed.get(base + "/compressed-data").content == stored
        assert packed.post(base + "/verify-md5").status_code == 200
    stats = packed.get("/statistics").json()
    assert int(stats["TotalUncompressedSize"]) == sum(map(len, contents))
    assert int(stats["TotalDiskSize"]) == sum(map(len, on_disk.values())) < sum(map(len, contents))

    study = first["ParentStudy"]
    report = b"compressed at ingest " * 100
    assert packed.put(f"/studies/{study}/attachments/report", report).status_code == 200
    assert fact(packed, f"/studies/{study}/attachments/report/is-compressed") == "1"
    assert packed.get(f"/studies/{study}/attachments/report/data").content == report
    assert inflate(packed.get(f"/studies/{study}/attachments/report/compressed-data").content) == report

    base = f"/instances/{ids[-1]}/attachments/dicom"
    assert packed.post(base + "/uncompress").status_code == 200
    assert fact(packed, base + "/is-compressed") == "0"
    assert stored_files(packed)[fact(packed, base + "/uuid")] == stowed[-1]
    assert packed.get(f"/instances/{ids[-1]}/file").content == stowed[-1]


def test_a_compressed_storage_survives_a_restart(make_daemon):
    """Compressed files are read back after a restart (what they are is in the index), and the
    files of deleted compressed instances go."""
    d = make_daemon({"StorageCompression": True})
    data = make_ct("RESTART-1", size=200)
    a = d.store(data)
    d.stop()
    d.start()
    assert d.get(f"/instances/{a['ID']}/file").content == data
    assert fact(d, f"/instances/{a['ID']}/attachments/dicom/is-compressed") == "1"
    assert d.delete(f"/instances/{a['ID']}").status_code == 200
    assert stored_files(d) == {}
