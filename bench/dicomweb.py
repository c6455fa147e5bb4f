#!/usr/bin/env python3
"""Side-by-side DICOMweb benchmark: Orthanc (the reference) and this daemon, in one interleaved run.

It installs the reference if missing (bench/install-reference.sh), makes the yardstick's data set if
missing, starts Orthanc (../shared/bench/run-orthanc.sh --fresh) and a fresh dicomweb-daemon on
loopback, runs the yardstick ../shared/bench/bench.py against both (STOW 1 and 4 clients, QIDO at
20,000 instances, series metadata, retrieve MB/s, frames, rendered, viewer), prints its markdown
table, and stops both servers.

    python bench/dicomweb.py [--data /tmp/bench-data] [--phases stow,metadata,qido,...] [--smoke]
    python bench/dicomweb.py --baseline /tmp/before/.venv/bin/python    # before/after in one run

``--baseline`` names the Python of another install of the daemon (an earlier commit, say): it runs
as a third target, "before", in the same interleaved run, so that a change is judged against the
code it changes and the reference at once.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "bench"


def wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--yardstick", default=str(SHARED), help="folder of bench.py, make_dataset.py, run-orthanc.sh")
    ap.add_argument("--data", default="/tmp/bench-data")
    ap.add_argument("--smoke", action="store_true", help="small data set, for a quick check")
    ap.add_argument("--port", type=int, default=8060)
    ap.add_argument("--phases", default=None)
    ap.add_argument("--out", default="/tmp/side-by-side.json")
    ap.add_argument("--md", default="/tmp/side-by-side.md")
    ap.add_argument("--config", default=None, help="extra JSON config for our daemon")
    ap.add_argument("--baseline", default=None, help="Python of another install, measured as 'before'")
    a, rest = ap.parse_known_args()
    yard = pathlib.Path(a.yardstick)
    if shutil.which("Orthanc") is None:
        subprocess.run([str(HERE / "install-reference.sh")], check=True)
    if not pathlib.Path(a.data, "scale").exists():
        subprocess.run([sys.executable, str(yard / "make_dataset.py"), "--out", a.data] +
                       (["--smoke"] if a.smoke else []), check=True)
    subprocess.run([str(yard / "run-orthanc.sh"), "--stop"], check=False)  # both servers start empty
    pid_o = subprocess.run([str(yard / "run-orthanc.sh"), "--fresh"], check=True, capture_output=True,
                           text=True).stdout.strip().splitlines()[-1]
    daemons = []  # (name, port, process, folder)
    try:
        if a.baseline:
            daemons.append(start_daemon("before", a.baseline, a.port + 1, a.config))
        daemons.append(start_daemon("ours", sys.executable, a.port, a.config))
        cmd = [sys.executable, str(yard / "bench.py"), "--data", a.data,
               "--target", "orthanc=http://127.0.0.1:8052/dicom-web", "--pid", f"orthanc={pid_o}"]
        for name, port, proc, _ in daemons:
            cmd += ["--target", f"{name}=http://127.0.0.1:{port}/dicom-web", "--pid", f"{name}={proc.pid}"]
        cmd += ["--out", a.out, "--md", a.md, *rest]
        if a.phases:
            cmd += ["--phases", a.phases]
        subprocess.run(cmd, check=True)
        print(pathlib.Path(a.md).read_text())
    finally:
        for _, _, proc, work in daemons:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            shutil.rmtree(work, ignore_errors=True)
        subprocess.run([str(yard / "run-orthanc.sh"), "--stop"], check=False)


def start_daemon(name: str, python: str, port: int, extra: str | None):
    """A fresh daemon (empty data folder) on ``port``, run by ``python``; wait until it answers."""
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    config = {"HttpPort": port, "DicomPort": port + 1000, "StorageDirectory": str(work / "data")}
    config.update(json.loads(extra) if extra else {})
    (work / "config.json").write_text(json.dumps(config))
    proc = subprocess.Popen([python, "-c", "from twisted.scripts.twistd import run; run()", "-n",
                             "--pidfile=", "dicomweb", "--config", str(work / "config.json")], cwd=work,
                            stdout=open(work / "daemon.log", "wb"), stderr=subprocess.STDOUT)
    wait_for(f"http://127.0.0.1:{port}/system")
    return name, port, proc, work


if __name__ == "__main__":
    main()
