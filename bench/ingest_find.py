#!/usr/bin/env python3
"""Foundation benchmark: single-client ingest through POST /instances, and /tools/find at Study level.

Usage:
    python bench/ingest_find.py --url http://127.0.0.1:8042 [--ingest 2000] [--scale 20000]
    [--target orthanc=http://127.0.0.1:8052 ...]   # the same figures for other servers, interleaved

Prints instances/s for ingest of small CT instances (64x64), then milliseconds (median, p95) of a few
/tools/find queries at Study level once each server holds ``--scale`` instances. Servers must start
empty. Figures only: nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
import requests
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

PIXELS = (np.arange(64 * 64, dtype=np.uint16) % 4096).tobytes()
NAMES = ["ROSS^BOB", "SMITH^JOHN", "DOE^JANE", "MÜLLER^JOSÉ", "BARBARA^ANN", "ROSSI^MARIO", "KING^LEE"]


def instance(n: int, per_study: int = 10) -> bytes:
    """Deterministic small CT: 10 instances per study in 2 series, 4 studies per patient."""
    study, series = n // per_study, (n % per_study) // (per_study // 2)
    patient = study // 4
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = f"1.2.826.0.1.3680043.10.1.{n + 1}"
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.10.2.{study + 1}"
    ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.10.3.{study + 1}.{series + 1}"
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientID = f"PID{patient:05d}"
    ds.PatientName = NAMES[patient % len(NAMES)] + f"{patient}"
    ds.StudyDate = f"{2015 + study % 8}{1 + study % 12:02d}{1 + study % 28:02d}"
    ds.StudyTime = "101010"
    ds.AccessionNumber = f"ACC{study:06d}"
    ds.StudyDescription = "BENCH"
    ds.Modality = "CT" if (study + series) % 2 == 0 else "MR"
    ds.SeriesNumber = series + 1
    ds.InstanceNumber = n % per_study + 1
    ds.Rows = ds.Columns = 64
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = PIXELS
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def ingest(targets: dict[str, str], start: int, count: int, chunk: int = 200) -> dict[str, float]:
    """Store instances ``start..start+count`` in every target, interleaved by chunks; seconds spent."""
    spent = {name: 0.0 for name in targets}
    sessions = {name: requests.Session() for name in targets}
    for base in range(start, start + count, chunk):
        bodies = [instance(n) for n in range(base, min(base + chunk, start + count))]
        for name, url in targets.items():
            t = time.perf_counter()
            for body in bodies:
                r = sessions[name].post(url + "/instances", data=body, timeout=60)
                r.raise_for_status()
            spent[name] += time.perf_counter() - t
    return spent


def fill(targets: dict[str, str], start: int, count: int, chunk: int = 500) -> None:
    """Store more instances quickly, as ZIP uploads (both Orthanc and this daemon take them)."""
    import zipfile

    for base in range(start, start + count, chunk):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for n in range(base, min(base + chunk, start + count)):
                z.writestr(f"{n}.dcm", instance(n))
        for url in targets.values():
            requests.post(url + "/instances", data=buf.getvalue(), timeout=600).raise_for_status()


QUERIES = {
    "all studies, Limit 100": {"Level": "Study", "Query": {}, "Limit": 100},
    "PatientName=ROSS*": {"Level": "Study", "Query": {"PatientName": "ROSS*"}},
    "PatientName=ross* (case-insensitive)": {"Level": "Study", "Query": {"PatientName": "ross*"}},
    "StudyDate=20180101-20181231": {"Level": "Study", "Query": {"StudyDate": "20180101-20181231"}},
    "PatientID exact": {"Level": "Study", "Query": {"PatientID": "PID00042"}},
    "AccessionNumber exact": {"Level": "Study", "Query": {"AccessionNumber": "ACC000777"}},
    "ModalitiesInStudy=CT, Expand, Limit 100": {"Level": "Study", "Query": {"ModalitiesInStudy": "CT"},
                                                 "Expand": True, "Limit": 100},
}


def timed(call, rounds: int) -> tuple[float, float, int]:
    """Median and p95 milliseconds of ``call()`` (a request), and the length of its JSON answer."""
    samples, count = [], 0
    for _ in range(rounds):
        t = time.perf_counter()
        r = call()
        samples.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
        count = len(r.json())
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)], count


def targets_of(url: str, others: list[str]) -> dict[str, str]:
    """``{"ours": url, name: url, ...}`` from ``--url`` and the repeated ``--target NAME=URL``."""
    targets = {"ours": url.rstrip("/")}
    targets.update(dict(t.split("=", 1) for t in others))
    return targets


def print_table(labels: list[str], results: dict[str, dict]) -> None:
    """A markdown table: one row per query, median (p95) ms [result count] per server."""
    names = list(results)
    print("| query | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for label in labels:
        cells = [f"{results[n][label][0]:.1f} ({results[n][label][1]:.1f}) [{results[n][label][2]}]" for n in names]
        print(f"| {label} | " + " | ".join(cells) + " |")


def find_times(url: str, rounds: int) -> dict[str, tuple[float, float, int]]:
    s = requests.Session()
    return {label: timed(lambda body=body: s.post(url + "/tools/find", json=body, timeout=60), rounds)
            for label, body in QUERIES.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8042", help="dicomweb-daemon base URL")
    ap.add_argument("--target", action="append", default=[], help="NAME=URL of another server to measure")
    ap.add_argument("--ingest", type=int, default=2000, help="instances stored for the ingest figure")
    ap.add_argument("--scale", type=int, default=20000, help="instances in the database for the queries")
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args()
    targets = targets_of(a.url, a.target)
    spent = ingest(targets, 0, a.ingest)
    print(f"| ingest of {a.ingest} small CT (64x64), 1 client, POST /instances | " +
          " | ".join(f"{name}: {a.ingest / s:.0f} inst/s" for name, s in spent.items()) + " |")
    if a.scale > a.ingest:
        fill(targets, a.ingest, a.scale - a.ingest)
    results = {name: find_times(url, a.rounds) for name, url in targets.items()}
    print(f"\n/tools/find at Study level on {a.scale} instances ({a.scale // 10} studies): median (p95) ms\n")
    print_table(list(QUERIES), results)


if __name__ == "__main__":
    main()
