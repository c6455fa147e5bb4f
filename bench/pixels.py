#!/usr/bin/env python3
"""Pixel benchmarks: figures to read, never assertions.

Prints
  * ms for a rendered JPEG of a 512x512 16-bit CT (over HTTP, and the codecs call alone),
  * frames/s transcoding a 100-frame JPEG 2000 lossless instance to explicit VR little endian,
  * the latency of GET /system, idle and while 4 clients keep asking for renderings.

    python bench/pixels.py [--rounds 20]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dicomweb_daemon import codecs  # noqa: E402


def ct(frames: int = 1, size: int = 512) -> Dataset:
    """A 16-bit CT whose pixels look like a body: a disc of soft tissue with noise, in air."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[:size, :size]
    disc = ((x - size / 2) ** 2 + (y - size / 2) ** 2 < (size * 0.4) ** 2)
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName, ds.Modality = "BENCH", "BENCH^PIXELS", "CT"
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.WindowCenter, ds.WindowWidth = 40, 400
    if frames > 1:
        ds.NumberOfFrames = frames
    stack = [(disc * 1064 + rng.integers(0, 40, (size, size))).astype(np.uint16) for _ in range(frames)]
    ds.PixelData = np.stack(stack).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def as_file(ds: Dataset, folder: pathlib.Path, name: str) -> str:
    path = folder / name
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def start_daemon(folder: pathlib.Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = folder / "config.json"
    config.write_text(json.dumps({"HttpPort": port, "StorageDirectory": str(folder / "data")}))
    log = open(folder / "daemon.log", "ab")
    proc = subprocess.Popen([sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n",
                             "--pidfile=", "dicomweb", "--config", str(config)], cwd=folder, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/system", timeout=1).read()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the daemon did not start; see " + str(folder / "daemon.log"))


def get(url: str, accept: str | None = None) -> tuple[float, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    t = time.perf_counter()
    body = urllib.request.urlopen(request, timeout=120).read()
    return (time.perf_counter() - t) * 1000, body


def summary(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return f"median {statistics.median(values):8.1f} ms   p95 {p95:8.1f} ms   (n={len(values)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args()
    folder = pathlib.Path(tempfile.mkdtemp(prefix="bench-pixels-"))
    single = as_file(ct(), folder, "ct512.dcm")
    multi_native = as_file(ct(frames=100), folder, "ct100.dcm")
    t = time.perf_counter()
    j2k = folder / "ct100-j2k.dcm"
    encoded = pydicom.dcmread(io.BytesIO(codecs.transcode_file(multi_native, JPEG2000Lossless)))
    encoded.SOPInstanceUID = encoded.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    encoded.save_as(j2k, enforce_file_format=True)
    print(f"setup: 100 frames 512x512 encoded to JPEG 2000 lossless in {time.perf_counter() - t:.1f} s "
          f"({os.path.getsize(j2k) / 1e6:.1f} MB)")

    # 1. one rendering, in-process then over HTTP
    calls = []
    for _ in range(a.rounds):
        t = time.perf_counter()
        codecs.render(single, media_type="image/jpeg")
        calls.append((time.perf_counter() - t) * 1000)
    print(f"render 512x512 16-bit CT -> JPEG, codecs.render alone:   {summary(calls)}")
    # What the rendered route does: the DICOM JSON and frame table of ingest, no file parsing.
    import zlib

    from dicomweb_daemon.dicom.parsing import parse_buffer

    parsed = parse_buffer(open(single, "rb").read())
    blob = zlib.compress(parsed.metadata_json)
    from dicomweb_daemon.codecs.stored import HeaderCache

    for label, headers in (("cold", None), ("warm", HeaderCache())):
        calls = []
        for _ in range(a.rounds):
            t = time.perf_counter()
            codecs.render_stored(single, parsed.frames, parsed.transfer_syntax, blob, 1, key="ct512",
                                 headers=headers, media_type="image/jpeg")
            calls.append((time.perf_counter() - t) * 1000)
        print(f"  the same through the stored JSON + frame table ({label}): {summary(calls)}")

    proc, url = start_daemon(folder)
    try:
        for path in (single, str(j2k)):
            request = urllib.request.Request(url + "/instances", data=pathlib.Path(path).read_bytes(), method="POST")
            urllib.request.urlopen(request, timeout=120).read()
        ds = pydicom.dcmread(single, stop_before_pixels=True)
        rendered = (f"{url}/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
                    f"/instances/{ds.SOPInstanceUID}/rendered")
        get(rendered)  # warm-up
        print(f"GET .../rendered (image/jpeg), 512x512 16-bit CT:        "
              f"{summary([get(rendered)[0] for _ in range(a.rounds)])}")

        jhead = pydicom.dcmread(str(j2k), stop_before_pixels=True)
        frame_url = (f"{url}/dicom-web/studies/{jhead.StudyInstanceUID}/series/{jhead.SeriesInstanceUID}"
                     f"/instances/{jhead.SOPInstanceUID}/frames/50/rendered")
        print(f"GET frames/50/rendered of the 100-frame JPEG 2000 one:   "
              f"{summary([get(frame_url)[0] for _ in range(a.rounds)])}")

        # 2. transcoding JPEG 2000 -> explicit VR little endian
        t = time.perf_counter()
        out = codecs.transcode_file(str(j2k), ExplicitVRLittleEndian)
        seconds = time.perf_counter() - t
        assert pydicom.dcmread(io.BytesIO(out)).NumberOfFrames == 100
        print(f"transcode 100-frame JPEG 2000 lossless -> explicit LE:   {100 / seconds:8.1f} frames/s "
              f"({seconds:.2f} s for the file)")
        jds = pydicom.dcmread(str(j2k))
        frames = list(pydicom.encaps.generate_frames(jds.PixelData, number_of_frames=100))
        t = time.perf_counter()
        for frame in frames:
            codecs.transcode_frame(jds, frame, JPEG2000Lossless, ExplicitVRLittleEndian)
        print(f"transcode_frame, same frames one by one:                 "
              f"{100 / (time.perf_counter() - t):8.1f} frames/s")

        # 3. GET /system, idle then while 4 clients render
        idle = [get(url + "/system")[0] for _ in range(a.rounds)]
        print(f"GET /system idle:                                         {summary(idle)}")
        stop = threading.Event()
        counts = [0] * 4

        def render_loop(i: int) -> None:
            while not stop.is_set():
                get(rendered + "?quality=90")
                counts[i] += 1

        workers = [threading.Thread(target=render_loop, args=(i,), daemon=True) for i in range(4)]
        for w in workers:
            w.start()
        time.sleep(0.5)
        started = time.perf_counter()
        busy = []
        for _ in range(a.rounds):
            busy.append(get(url + "/system")[0])
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        stop.set()
        for w in workers:
            w.join()
        print(f"GET /system while 4 clients render:                      {summary(busy)}")
        print(f"  (renders served meanwhile: {sum(counts)} in about {elapsed + 0.5:.1f} s)")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
