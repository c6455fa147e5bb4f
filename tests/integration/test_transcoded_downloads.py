"""Downloads in another transfer syntax and under another name, as Orthanc (1.12.2-1.12.7) gives
them: /instances/{id}/file?transcode=&lossy-quality=&filename=, archives and media with
lossy-quality / LossyQuality, /modify's LossyQuality, the configured DicomLossyTranscodingQuality
when a request names none, an attachment's ?filename=; bad values refused with a 400."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit

from tests.conftest import wait_job
from tests.dicom_files import eight_bit_image

DEFAULT_QUALITY = 50


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    from tests.conftest import Daemon

    d = Daemon(tmp_path_factory.mktemp("transcoded"), {"DicomLossyTranscodingQuality": DEFAULT_QUALITY}).start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def image(daemon):
    """An 8-bit image with texture (JPEG's size then follows its quality)."""
    rng = np.random.default_rng(7)
    ramp = np.add.outer(np.arange(128), np.arange(128)).astype(np.int32)
    pixels = np.clip(ramp + rng.integers(-40, 40, (128, 128)), 0, 255).astype(np.uint8)
    return daemon.store(eight_bit_image(128, 128, pixels.tobytes()))


def _file(daemon, image, query: str = ""):
    r = daemon.get(f"/instances/{image['ID']}/file{query}")
    assert r.status_code == 200, r.text
    return r


def test_file_transcoded_at_a_quality(daemon, image):
    """?transcode= gives the file in that syntax; a lower lossy-quality gives a smaller file; without
    one, the configured quality; the stored file is untouched."""
    sizes = {}
    for quality in (20, 50, 90):
        r = _file(daemon, image, f"?transcode={JPEGBaseline8Bit}&lossy-quality={quality}")
        ds = pydicom.dcmread(io.BytesIO(r.content))
        assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit and r.headers["Content-Type"] == "application/dicom"
        sizes[quality] = len(r.content)
    assert sizes[20] < sizes[50] < sizes[90]
    assert len(_file(daemon, image, f"?transcode={JPEGBaseline8Bit}").content) == sizes[DEFAULT_QUALITY]
    stored = _file(daemon, image)
    assert pydicom.dcmread(io.BytesIO(stored.content)).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    same = _file(daemon, image, f"?transcode={ExplicitVRLittleEndian}")
    assert same.content == stored.content


def test_file_names(daemon, image):
    """?filename= names the download; quotes and line breaks cannot leave the header."""
    assert _file(daemon, image).headers["Content-Disposition"] == f'filename="{image["ID"]}.dcm"'
    assert _file(daemon, image, "?filename=toto.dcm").headers["Content-Disposition"] == 'filename="toto.dcm"'
    tricky = _file(daemon, image, '?filename="toto".dcm%0D%0ASet-Cookie:evil=1')
    assert tricky.headers["Content-Disposition"] == 'filename="toto.dcmSet-Cookie:evil=1"'
    assert "Set-Cookie" not in tricky.headers
    attachment = daemon.get(f"/instances/{image['ID']}/attachments/dicom/data?filename=x.dcm")
    assert attachment.headers["Content-Disposition"] == 'filename="x.dcm"'


@pytest.mark.parametrize("query", ["?transcode=1.2.3", "?transcode=JPEG",
                                   f"?transcode={JPEGBaseline8Bit}&lossy-quality=0",
                                   f"?transcode={JPEGBaseline8Bit}&lossy-quality=101",
                                   f"?transcode={JPEGBaseline8Bit}&lossy-quality=high"])
def test_bad_transcoding_options_are_400(daemon, image, query):
    r = daemon.get(f"/instances/{image['ID']}/file{query}")
    assert r.status_code == 400 and r.json()["HttpStatus"] == 400, r.text


def _zip_size(response) -> int:
    assert response.status_code == 200, response.text
    return sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(response.content)).infolist()
               if not i.filename.endswith("DICOMDIR"))


def test_archives_and_media_at_a_quality(daemon, image):
    """lossy-quality (GET) and LossyQuality (POST) of archives and media, and of an archive job."""
    patient, series = image["ParentPatient"], image["ParentSeries"]
    for kind in ("archive", "media"):
        low = _zip_size(daemon.get(f"/patients/{patient}/{kind}?transcode={JPEGBaseline8Bit}&lossy-quality=20"))
        high = _zip_size(daemon.get(f"/patients/{patient}/{kind}?transcode={JPEGBaseline8Bit}&lossy-quality=90"))
        assert low < high, kind
        posted = _zip_size(daemon.post(f"/series/{series}/{kind}",
                                       json={"Transcode": JPEGBaseline8Bit, "LossyQuality": 20}))
        assert posted == low, kind
    job = daemon.post(f"/series/{series}/archive", json={"Transcode": JPEGBaseline8Bit, "LossyQuality": 20,
                                                          "Asynchronous": True}).json()["ID"]
    assert wait_job(daemon, job)["State"] == "Success"
    assert _zip_size(daemon.get(f"/jobs/{job}/archive")) == _zip_size(
        daemon.get(f"/series/{series}/archive?transcode={JPEGBaseline8Bit}&lossy-quality=20"))
    r = daemon.post(f"/series/{series}/archive", json={"Transcode": JPEGBaseline8Bit, "LossyQuality": "20"})
    assert r.status_code == 400


def test_modify_at_a_quality(daemon, image):
    """/modify's LossyQuality, checked: 1 to 100."""
    def modified(body) -> bytes:
        r = daemon.post(f"/instances/{image['ID']}/modify", json={"Transcode": JPEGBaseline8Bit, **body})
        assert r.status_code == 200, r.text
        return r.content

    low, high = modified({"LossyQuality": 20}), modified({"LossyQuality": 90})
    assert len(low) < len(high)
    assert abs(len(modified({})) - len(modified({"LossyQuality": DEFAULT_QUALITY}))) < 64  # new UIDs aside
    for bad in (0, 101, "90", True):
        r = daemon.post(f"/instances/{image['ID']}/modify", json={"Transcode": JPEGBaseline8Bit, "LossyQuality": bad})
        assert r.status_code == 400, bad


def test_export_to_the_servers_file_system(make_daemon, tmp_path):
    """/instances/{id}/export writes the file where the body says only with
    RestApiWriteToFileSystemEnabled (403 otherwise, nothing written); a path that cannot be written
    is a 500 naming it, with nothing left behind."""
    data = eight_bit_image(8, 8, bytes(64))
    out = tmp_path / "out"
    out.mkdir()
    target = out / "exported.dcm"
    closed = make_daemon()
    r = closed.post(f"/instances/{closed.store(data)['ID']}/export", str(target))
    assert r.status_code == 403 and "RestApiWriteToFileSystemEnabled" in r.json()["Details"]
    assert not target.exists()
    opened = make_daemon({"RestApiWriteToFileSystemEnabled": True, "StorageCompression": True})
    instance = opened.store(data)["ID"]
    assert opened.post(f"/instances/{instance}/export", str(target)).json() == {}
    assert target.read_bytes() == data  # the content, though stored compressed
    r = opened.post(f"/instances/{instance}/export", str(out / "no-such-folder" / "x.dcm"))
    assert r.status_code == 500 and "no-such-folder" in r.json()["Details"]
    assert [p.name for p in out.iterdir()] == ["exported.dcm"]
    assert opened.post(f"/instances/{instance}/export", "").status_code == 400
