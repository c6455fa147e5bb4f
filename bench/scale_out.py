"""STOW-RS throughput with one and with two daemons on one PostgreSQL index and one shared storage
folder, 4 clients (each STOWs batches of --batch instances; with two daemons, clients 0 and 2 talk
to the first, 1 and 3 to the second, as a round-robin load balancer would spread them).

Prints instances/s per setup and where the CPU went (each daemon with its ingest workers, PostgreSQL),
so that the note can say where the bottleneck is on this machine.

    python bench/scale_out.py [--instances 2000] [--size 256] [--batch 10] [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid

import psutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from transfers import Server, call, series, start_ours  # noqa: E402

from tests.postgres import new_database, start, stop  # noqa: E402

BOUNDARY = "scaleout"


def stow_body(files: list[bytes]) -> bytes:
    out = []
    for data in files:
        out.append(f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(out) + f"--{BOUNDARY}--\r\n".encode()


def unique_copies(files: list[bytes], tag: str) -> list[bytes]:
    """The files with new SOP Instance UIDs (the same length: the bytes are replaced in place)."""
    import pydicom
    from pydicom.filebase import DicomBytesIO

    out = []
    for i, data in enumerate(files):
        ds = pydicom.dcmread(DicomBytesIO(data))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"2.25.{uuid.uuid4().int}"
        ds.StudyInstanceUID = f"2.25.{int(tag, 16)}{i // 50}"
        buffer = DicomBytesIO()
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
        out.append(buffer.getvalue())
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def postgres_pids() -> list[int]:
    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] and p.info["name"].startswith("postgres")]


def run(daemons: list[Server], files: list[bytes], batch: int, clients: int = 4) -> dict:
    chunks = [files[i:i + batch] for i in range(0, len(files), batch)]
    bodies = [stow_body(c) for c in chunks]
    queue = list(range(len(bodies)))
    lock = threading.Lock()
    errors: list[str] = []

    def client(k: int) -> None:
        server = daemons[k % len(daemons)]
        while True:
            with lock:
                if not queue:
                    return
                i = queue.pop()
            try:
                _stow(server, bodies[i])
            except Exception as e:  # noqa: BLE001 - reported
                errors.append(str(e))
                return

    pg = postgres_pids()
    before = {s.name: cpu_seconds([s.proc.pid]) for s in daemons} | {"postgresql": cpu_seconds(pg)}
    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"STOW failed: {errors[:3]}")
    after = {s.name: cpu_seconds([s.proc.pid]) for s in daemons} | {"postgresql": cpu_seconds(pg)}
    return {"rate": len(files) / elapsed, "cpu": {k: (after[k] - before[k]) / elapsed for k in after}}


def _stow(server: Server, body: bytes) -> None:
    import urllib.request

    request = urllib.request.Request(server.url + "/dicom-web/studies", data=body, method="POST",
                                     headers={"Content-Type": f'multipart/related; type="application/dicom"; '
                                                              f'boundary={BOUNDARY}', "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as answer:
        if answer.status != 200:
            raise RuntimeError(f"{server.name}: HTTP {answer.status}")
        answer.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    template = series(args.instances, args.size)
    pg_folder = tempfile.mkdtemp(prefix="scale-out-pg-")
    admin = start(pg_folder)
    figures: dict[str, list[dict]] = {"one daemon": [], "two daemons": []}
    try:
        for round_ in range(args.rounds):
            for setup in (list(figures) if round_ % 2 == 0 else list(reversed(figures))):
                shared = pathlib.Path(tempfile.mkdtemp(prefix="scale-out-files-"))
                config = {"Backends": {"Index": "postgresql"}, "PostgreSQL": {"ConnectionUri": new_database(admin)},
                          "StorageDirectory": str(shared)}
                count = 1 if setup == "one daemon" else 2
                daemons = [start_ours(f"d{k}", config) for k in range(count)]
                try:
                    files = unique_copies(template, uuid.uuid4().hex[:8])
                    result = run(daemons, files, args.batch)
                    stored = json.loads(call("GET", daemons[0].url + "/statistics"))["CountInstances"]
                    if stored != len(files):
                        raise SystemExit(f"{setup}: {stored} instances indexed of {len(files)}")
                    figures[setup].append(result)
                    print(f"round {round_ + 1} {setup}: {result['rate']:.0f} instances/s, CPU cores busy: "
                          + ", ".join(f"{k} {v:.2f}" for k, v in result["cpu"].items()), flush=True)
                finally:
                    for d in daemons:
                        d.stop()
                    shutil.rmtree(shared, ignore_errors=True)
    finally:
        stop(pg_folder)
        shutil.rmtree(pg_folder, ignore_errors=True)
    print(f"\nSTOW-RS, {args.instances} instances of {args.size}x{args.size} (16-bit), batches of {args.batch}, "
          f"4 clients, PostgreSQL index, one shared folder; {os.cpu_count()} cores; median of {args.rounds} rounds\n")
    print("| setup | instances/s | CPU cores busy (daemons / PostgreSQL) |")
    print("|---|---|---|")
    for setup, results in figures.items():
        rate = statistics.median(r["rate"] for r in results)
        daemons_cpu = statistics.median(sum(v for k, v in r["cpu"].items() if k != "postgresql") for r in results)
        pg_cpu = statistics.median(r["cpu"]["postgresql"] for r in results)
        print(f"| {setup} | {rate:.0f} | {daemons_cpu:.2f} / {pg_cpu:.2f} |")


if __name__ == "__main__":
    main()
