#!/usr/bin/env python3
"""DICOMweb benchmark: ingest through STOW-RS, then QIDO-RS searches.

Usage:
    python bench/dicomweb_ingest_qido.py --url http://127.0.0.1:8042/dicom-web [--scale 20000]
    [--target orthanc=http://127.0.0.1:8052/dicom-web ...]   # the same figures for other servers

Stores ``--scale`` small CT instances (10 per study, see ingest_find.py) with STOW-RS requests of
``--batch`` instances, prints instances/s, then milliseconds (median, p95) of QIDO-RS queries.
Servers must start empty. Figures only: nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_find import instance, print_table, targets_of, timed  # noqa: E402

BOUNDARY = "bench-boundary-7d1f"
QUERIES = {
    "/studies?limit=100": "/studies?limit=100",
    "/studies?limit=100&offset=1000": "/studies?limit=100&offset=1000",
    "/studies?PatientName=ross*": "/studies?PatientName=ross*",
    "/studies?StudyDate=20180101-20181231&limit=100": "/studies?StudyDate=20180101-20181231&limit=100",
    "/studies?PatientID=PID00042": "/studies?PatientID=PID00042",
    "/studies?ModalitiesInStudy=CT&limit=100": "/studies?ModalitiesInStudy=CT&limit=100",
    "/studies?limit=100&includefield=StudyDescription": "/studies?limit=100&includefield=StudyDescription",
    "/series?limit=100": "/series?limit=100",
    "/instances?limit=100": "/instances?limit=100",
    "/studies/{uid}/instances": "/studies/1.2.826.0.1.3680043.10.2.777/instances",
}


def stow(targets: dict[str, str], count: int, batch: int) -> dict[str, float]:
    spent = {name: 0.0 for name in targets}
    sessions = {name: requests.Session() for name in targets}
    headers = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
               "Accept": "application/dicom+json"}
    for base in range(0, count, batch):
        body = b"".join(f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + instance(n) + b"\r\n"
                        for n in range(base, min(base + batch, count))) + f"--{BOUNDARY}--\r\n".encode()
        for name, url in targets.items():
            t = time.perf_counter()
            r = sessions[name].post(url + "/studies", data=body, headers=headers, timeout=300)
            r.raise_for_status()
            spent[name] += time.perf_counter() - t
    return spent


def qido_times(url: str, rounds: int) -> dict[str, tuple[float, float, int]]:
    s = requests.Session()
    accept = {"Accept": "application/dicom+json"}
    return {label: timed(lambda path=path: s.get(url + path, headers=accept, timeout=60), rounds)
            for label, path in QUERIES.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8042/dicom-web", help="dicomweb-daemon DICOMweb root")
    ap.add_argument("--target", action="append", default=[], help="NAME=URL of another DICOMweb root")
    ap.add_argument("--scale", type=int, default=20000, help="instances stored (10 per study)")
    ap.add_argument("--batch", type=int, default=50, help="instances per STOW-RS request")
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args()
    targets = targets_of(a.url, a.target)
    spent = stow(targets, a.scale, a.batch)
    print(f"| STOW-RS of {a.scale} small CT (64x64), {a.batch} per request, 1 client | " +
          " | ".join(f"{name}: {a.scale / s:.0f} inst/s" for name, s in spent.items()) + " |")
    results = {name: qido_times(url, a.rounds) for name, url in targets.items()}
    print(f"\nQIDO-RS on {a.scale} instances ({a.scale // 10} studies): median (p95) ms [results]\n")
    print_table(list(QUERIES), results)


if __name__ == "__main__":
    main()
