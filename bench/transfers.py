#!/usr/bin/env python3
"""Transfers between servers, side by side: this daemon's DICOMweb client and Orthanc peer store
against Orthanc's (Orthanc + its DICOMweb plugin), in one interleaved run.

Four servers on loopback: a third server holding a series (this daemon), a peer target (an
Orthanc), and the two clients being measured: this daemon ("ours") and an Orthanc ("orthanc"),
both configured with the third server as DICOMweb server "third" and the target as peer "target".
For each client, rounds of:
  retrieve   POST /dicom-web/servers/third/retrieve {Study, Series}   (WADO-RS into the client)
  stow       POST /dicom-web/servers/third/stow {Resources: [series]} (STOW-RS from the client)
  peer store POST /peers/target/store {Resources: [series]}           (to an Orthanc)
Each is timed (MB/s of DICOM moved) with the client's peak RSS above its RSS before the call
(the kernel's high-water mark, reset before each call).

    python bench/transfers.py [--instances 250] [--size 512] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
MB = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method: str, url: str, body=None, timeout: float = 600) -> bytes:
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    request = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return answer.read()


def wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            call("GET", url, timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def series(count: int, size: int, geometry: bool = False) -> list[bytes]:
    """``count`` CT images of ``size`` x ``size`` 16-bit pixels, one series; with ``geometry``, the
    slice positions, spacing, window and descriptions a viewer stacks and shows them by."""
    study, series_uid = generate_uid(), generate_uid()
    out = []
    for i in range(count):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series_uid
        ds.PatientID, ds.PatientName, ds.Modality = "BENCH", "TRANSFER^BENCH", "CT"
        ds.InstanceNumber = i + 1
        if geometry:
            ds.StudyDate, ds.StudyDescription, ds.SeriesNumber = "20240101", "Viewer bench", 1
            ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 1.25 * i], [1, 0, 0, 0, 1, 0]
            ds.PixelSpacing, ds.SliceThickness = [0.7, 0.7], 1.25
            ds.WindowCenter, ds.WindowWidth = 128, 256
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = bytes((i + k) % 251 for k in range(256)) * (size * size * 2 // 256)
        buffer = pydicom.filebase.DicomBytesIO()
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
        out.append(buffer.getvalue())
    return out


class Server:
    def __init__(self, name: str, proc: subprocess.Popen, port: int, work: pathlib.Path):
        self.name, self.proc, self.port, self.work = name, proc, port, work
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.work, ignore_errors=True)

    def rss(self) -> int:
        return _status(self.proc.pid, "VmRSS")

    def reset_peak(self) -> None:
        pathlib.Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def peak(self) -> int:
        return _status(self.proc.pid, "VmHWM")


def _status(pid: int, key: str) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def start_ours(name: str, config: dict) -> Server:
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"transfers-{name}-"))
    port = free_port()
    (work / "config.json").write_text(json.dumps({"HttpPort": port, "DicomPort": free_port(),
                                                  "StorageDirectory": str(work / "data"), **config}))
    proc = subprocess.Popen([sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n",
                             "--pidfile=", "dicomweb", "--config", str(work / "config.json")], cwd=work,
                            stdout=open(work / "log", "wb"), stderr=subprocess.STDOUT)
    server = Server(name, proc, port, work)
    wait_for(server.url + "/system")
    return server


def start_orthanc(name: str, config: dict) -> Server:
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"transfers-{name}-"))
    port = free_port()
    base = {"Name": name, "HttpPort": port, "DicomPort": free_port(), "StorageDirectory": str(work / "db"),
            "IndexDirectory": str(work / "db"), "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "Plugins": [PLUGIN], "HttpTimeout": 60}
    (work / "config.json").write_text(json.dumps({**base, **config}))
    proc = subprocess.Popen(["Orthanc", str(work / "config.json")], cwd=work, stdout=open(work / "log", "wb"),
                            stderr=subprocess.STDOUT)
    server = Server(name, proc, port, work)
    wait_for(server.url + "/system")
    return server


def measure(client: Server, method: str, path: str, body, megabytes: float) -> tuple[float, int]:
    before = client.rss()
    client.reset_peak()
    start = time.perf_counter()
    call(method, client.url + path, body)
    seconds = time.perf_counter() - start
    return megabytes / seconds, max(0, client.peak() - before)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=250)
    ap.add_argument("--size", type=int, default=512, help="rows = columns of each image")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if shutil.which("Orthanc") is None:
        raise SystemExit("Orthanc is not installed: apt-get install orthanc orthanc-dicomweb")
    files = series(a.instances, a.size)
    megabytes = sum(map(len, files)) / MB
    servers: list[Server] = []
    try:
        third = start_ours("third", {})
        target = start_orthanc("target", {})
        servers += [third, target]
        remotes = {"DicomWeb": {"Servers": {"third": [third.url + "/dicom-web/"]}},
                   "OrthancPeers": {"target": [target.url + "/"]}}
        clients = [start_ours("ours", remotes), start_orthanc("orthanc", remotes)]
        servers += clients
        for data in files:
            call("POST", third.url + "/instances", data)
        first = pydicom.dcmread(pydicom.filebase.DicomBytesIO(files[0]))
        study_uid, series_uid = first.StudyInstanceUID, first.SeriesInstanceUID
        retrieve = {"Resources": [{"Study": study_uid, "Series": series_uid}], "Synchronous": True}
        results: dict[str, dict[str, list]] = {c.name: {} for c in clients}
        for _ in range(a.rounds):
            for client in clients:
                for patient in json.loads(call("GET", client.url + "/patients")):
                    call("DELETE", f"{client.url}/patients/{patient}")
                rows = results[client.name]
                rows.setdefault("retrieve", []).append(
                    measure(client, "POST", "/dicom-web/servers/third/retrieve", retrieve, megabytes))
                series_id = json.loads(call("GET", client.url + "/series"))[0]
                for patient in json.loads(call("GET", third.url + "/patients")):
                    call("DELETE", f"{third.url}/patients/{patient}")
                rows.setdefault("stow", []).append(
                    measure(client, "POST", "/dicom-web/servers/third/stow",
                            {"Resources": [series_id], "Synchronous": True}, megabytes))
                for patient in json.loads(call("GET", target.url + "/patients")):
                    call("DELETE", f"{target.url}/patients/{patient}")
                rows.setdefault("peer store", []).append(
                    measure(client, "POST", "/peers/target/store", {"Resources": [series_id], "Synchronous": True},
                            megabytes))
        print(f"\n{a.instances} instances, {megabytes:.0f} MB, {a.rounds} rounds (median MB/s; peak RSS growth)\n")
        print("| transfer | ours MB/s | orthanc MB/s | ours / orthanc | ours peak RSS | orthanc peak RSS |")
        print("|---|---:|---:|---:|---:|---:|")
        for kind in ("retrieve", "stow", "peer store"):
            ours = statistics.median(r[0] for r in results["ours"][kind])
            theirs = statistics.median(r[0] for r in results["orthanc"][kind])
            ours_rss = max(r[1] for r in results["ours"][kind]) / MB
            theirs_rss = max(r[1] for r in results["orthanc"][kind]) / MB
            print(f"| {kind} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}x | {ours_rss:.0f} MB | "
                  f"{theirs_rss:.0f} MB |")
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
