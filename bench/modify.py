"""Anonymization and modification of a whole study, side by side with Orthanc, in one interleaved run.

Each round, for each server in turn (the order alternates): the study of --instances CT images of
--size x --size is uploaded (not timed), then ``POST /studies/{id}/anonymize {"Asynchronous": true}``
is timed until its job succeeds, then ``/modify`` replacing PatientName the same way; the new study
must hold every instance (a bench that wins by losing files is caught). Medians, instances/s.

    python bench/modify.py [--instances 250] [--size 512] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from transfers import Server, call, series, start_orthanc, start_ours  # noqa: E402


def upload(server: Server, files: list[bytes]) -> str:
    study = ""
    for data in files:
        study = json.loads(call("POST", server.url + "/instances", data))["ParentStudy"]
    return study


def timed_job(server: Server, path: str, body: dict, expected: int) -> float:
    """Instances per second of an asynchronous modification, its job polled until it succeeds."""
    started = time.perf_counter()
    job = json.loads(call("POST", server.url + path, {**body, "Asynchronous": True}))["ID"]
    while True:
        state = json.loads(call("GET", f"{server.url}/jobs/{job}"))
        if state["State"] == "Success":
            break
        if state["State"] == "Failure":
            raise SystemExit(f"{server.name}: {path} failed: {state}")
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    new = state["Content"]["ID"]
    got = len(json.loads(call("GET", f"{server.url}/studies/{new}/instances")))
    if got != expected:
        raise SystemExit(f"{server.name}: the new study holds {got} of {expected} instances")
    call("DELETE", f"{server.url}/studies/{new}")
    return expected / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=250)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    files = series(args.instances, args.size)
    servers = [start_ours("ours", {}), start_orthanc("orthanc", {"Plugins": []})]
    figures: dict[tuple[str, str], list[float]] = {}
    try:
        for round_ in range(args.rounds):
            for server in (servers if round_ % 2 == 0 else servers[::-1]):
                study = upload(server, files)
                for label, path, body in (("anonymize", f"/studies/{study}/anonymize", {}),
                                          ("modify", f"/studies/{study}/modify",
                                           {"Replace": {"PatientName": "BENCH^MODIFIED"}})):
                    rate = timed_job(server, path, body, args.instances)
                    figures.setdefault((server.name, label), []).append(rate)
                    print(f"round {round_ + 1}, {server.name}, {label}: {rate:.1f} instances/s", flush=True)
                call("DELETE", f"{server.url}/studies/{study}")
    finally:
        for server in servers:
            server.stop()
    print(f"\n{args.instances} x {args.size}x{args.size} CT, median of {args.rounds}\n")
    print("| study job | ours (instances/s) | Orthanc (instances/s) | ours / Orthanc |\n|---|---:|---:|---:|")
    for label in ("anonymize", "modify"):
        ours = statistics.median(figures[("ours", label)])
        theirs = statistics.median(figures[("orthanc", label)])
        print(f"| {label} | {ours:.1f} | {theirs:.1f} | {ours / theirs:.2f}x |")


if __name__ == "__main__":
    main()
