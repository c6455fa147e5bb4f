"""HTTP/2 over HTTPS (ALPN h2, Twisted with the h2 package): a viewer loads a series' frames over one
connection. Checked with httpx's HTTP/2 client and a certificate authority made by the test."""
from __future__ import annotations

import asyncio
import time

import httpx
import pydicom
import pytest
from pydicom.data import get_testdata_file

from tests.dicom_files import make_ct
from tests.integration.test_stow import CONTENT_TYPE, multipart
from tests.pki import make_pki

MULTIFRAME = get_testdata_file("emri_small.dcm")  # 10 frames


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def https_daemon(make_daemon, pki, **config):
    d = make_daemon({"SslEnabled": True, "SslCertificate": str(pki["server"]), **config}, start=False)
    d.url = d.url.replace("http://", "https://")
    d.start(wait=False)
    with httpx.Client(verify=str(pki["ca"]), timeout=5) as probe:
        for _ in range(300):
            try:
                probe.get(d.url + "/system")
                return d
            except httpx.TransportError:
                time.sleep(0.1)
    raise RuntimeError("the HTTPS daemon did not answer")


def test_frames_stores_and_errors_over_one_http2_connection(make_daemon, pki):
    d = https_daemon(make_daemon, pki)
    ds = pydicom.dcmread(MULTIFRAME)
    size = ds.Rows * ds.Columns * 2
    base = (f"{d.url}/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}")
    big = make_ct("H2-BIG", size=3000)  # 18 MB: more than HTTP/2's flow-control windows

    async def session():
        async with httpx.AsyncClient(http2=True, verify=str(pki["ca"]), timeout=60) as client:
            uploaded = await client.post(d.url + "/instances", content=big)  # a body in HTTP/2 DATA frames
            body = multipart([open(MULTIFRAME, "rb").read()])
            stored = await client.post(f"{d.url}/dicom-web/studies", content=body,
                                       headers={"Content-Type": CONTENT_TYPE})
            accept = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
            frames = await asyncio.gather(*[client.get(f"{base}/frames/{n}", headers={"Accept": accept})
                                            for n in range(1, 11)])  # ten streams at once
            missing = await client.get(d.url + "/instances/nope")
            whole = await client.get(f"{d.url}/instances/{uploaded.json()['ID']}/file")
            return [uploaded, stored, missing, whole], frames

    (uploaded, stored, missing, whole), frames = asyncio.run(session())
    assert all(r.http_version == "HTTP/2" for r in (uploaded, stored, missing, whole, *frames))
    assert uploaded.status_code == 200 and stored.status_code == 200
    for n, r in enumerate(frames):
        assert r.status_code == 200
        assert ds.PixelData[n * size:(n + 1) * size] in r.content
    assert missing.status_code == 404 and missing.json()["HttpStatus"] == 404
    assert whole.content == big


def test_http2_can_be_turned_off_and_plain_http_stays_http11(make_daemon, pki):
    off = https_daemon(make_daemon, pki, EnableHttp2=False)
    with httpx.Client(http2=True, verify=str(pki["ca"])) as client:
        assert client.get(off.url + "/system").http_version == "HTTP/1.1"
    plain = make_daemon()
    with httpx.Client(http2=True) as client:
        r = client.get(plain.url + "/system")
        assert r.status_code == 200 and r.http_version == "HTTP/1.1"
    plain.store(make_ct("H1"))
