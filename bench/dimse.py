#!/usr/bin/env python3
"""DICOM networking (DIMSE) side by side: this daemon ("ours") against Orthanc, in one interleaved run.

Both servers run on loopback with the same settings (Orthanc's keys): a modality "target" (a DCMTK
``storescp`` writing into a temp folder), every service open to any calling AET, DicomScpTimeout 30.
Each round, for each server in turn (the order alternates between rounds):
  C-STORE    DCMTK storescu of --small 64x64 CT instances over 1 association, then over 4 in parallel,
             then of --large 512x512 ones over 1; the server is emptied before each, and must count
             every instance afterwards (a bench that "wins" by losing files is caught)
  C-MOVE     the --large series to storescp (MB/s; the files written are counted)
  HTTP       GET /system one after the other, idle and while 4 storescu send the --small set (p50, p95)
  idle CPU   of the server process over 10 s with no association, then with 20 open idle ones
Then, once per server, --find-instances tiny instances (10 per study) are stored (not timed) and a
few study-level C-FIND queries are timed with pynetdicom on one association reused for every query
(process start-up of findscu would dwarf them), then again with DCMTK's findscu repeating each query
on one association (``--repeat``: a C client, whose own cost per answer is far below pynetdicom's;
the time of one query is left out; --find-samples such runs per round, as one run moves by 20-30 %
on a busy machine). Medians over rounds; the table marks lower-is-better.
The bench's own clients run with Nagle's algorithm off (see TCP_NODELAY below), so that its figures
are the servers' and not delayed ACKs; the servers' own sockets are left as each server sets them.

    python bench/dimse.py [--rounds 3] [--small 2000] [--large 250] [--find-instances 20000] [--skip-find]
    python bench/dimse.py --small 200 --large 25 --find-instances 2000 --rounds 1     # quick check
"""
from __future__ import annotations

import argparse
import functools
import json
import os
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
from collections.abc import Callable

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from ingest_find import instance  # noqa: E402 - deterministic tiny CT, 10 per study, 4 studies per patient
from transfers import Server, call, free_port, series, start_orthanc, start_ours  # noqa: E402

MB = 1 << 20
AETS = {"ours": "OURS", "orthanc": "ORTHANC"}
TICKS = os.sysconf("SC_CLK_TCK")
# Debian's DCMTK (in storescu, storescp and the Debian Orthanc) leaves Nagle's algorithm on: each
# C-STORE then waits ~40 ms for a delayed ACK, and the bench measures that instead of the servers
# (storescu -> Orthanc: 11 instead of ~350 instances/s). Orthanc's own builds disable it
# (DISABLE_NAGLE_ALGORITHM), so does this variable; run with TCP_NODELAY=0 to see Debian's default.
os.environ.setdefault("TCP_NODELAY", "1")
# (label, keys): study-level queries on the C-FIND database made by ingest_find.instance
QUERIES = [("PatientID=PID00042 (exact)", {"PatientID": "PID00042"}),
           ("PatientName=SMITH* (wildcard)", {"PatientName": "SMITH*"}),
           ("StudyDate=20150101-20150630 (range)", {"StudyDate": "20150101-20150630"})]
RETURN_KEYS = ("PatientName", "PatientID", "StudyDate", "StudyTime", "StudyInstanceUID", "AccessionNumber",
               "StudyDescription", "ModalitiesInStudy", "NumberOfStudyRelatedInstances")


# -- data ----------------------------------------------------------------------------------------------
def write_set(folder: pathlib.Path, count: int, make: Callable[[int], bytes], parts: int = 4) -> list[pathlib.Path]:
    """``count`` files into ``parts`` sub-folders (one per storescu process), round robin; kept
    between runs of the same --work-dir (the C-FIND set takes a while to make)."""
    subs = [folder / f"q{i}" for i in range(parts)]
    if sum(len(list(s.glob("*.dcm"))) for s in subs if s.exists()) != count:
        shutil.rmtree(folder, ignore_errors=True)
        for s in subs:
            s.mkdir(parents=True)
        for n in range(count):
            (subs[n % parts] / f"{n:06d}.dcm").write_bytes(make(n))
    return subs


def megabytes(folders: list[pathlib.Path]) -> float:
    return sum(f.stat().st_size for d in folders for f in d.glob("*.dcm")) / MB


# -- servers and DCMTK ------------------------------------------------------------------------------------
def settings(target_port: int) -> dict:
    """The settings both servers share: the storescp target, any SCU allowed, idle associations kept 30 s."""
    return {"DicomModalities": {"target": ["TARGET", "127.0.0.1", target_port]}, "DicomCheckCalledAet": False,
            "DicomAlwaysAllowStore": True, "DicomAlwaysAllowFind": True, "DicomAlwaysAllowMove": True,
            "DicomScpTimeout": 30, "StorageCompression": False, "OverwriteInstances": False,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "ConcurrentJobs": 2}


def start(name: str, target_port: int) -> Server:
    config = {**settings(target_port), "DicomAet": AETS[name], "DicomPort": free_port()}
    server = start_ours(name, config) if name == "ours" else start_orthanc(name, {**config, "Plugins": []})
    server.dicom_port = config["DicomPort"]
    return server


def wipe(server: Server) -> None:
    for patient in json.loads(call("GET", server.url + "/patients")):
        call("DELETE", f"{server.url}/patients/{patient}")


def count(server: Server) -> int:
    return json.loads(call("GET", server.url + "/statistics"))["CountInstances"]


def storescu(server: Server, folders: list[pathlib.Path], log: pathlib.Path) -> subprocess.Popen:
    """One storescu process (one association) sending every file of ``folders``."""
    return subprocess.Popen(["storescu", "-aet", "BENCHSCU", "-aec", AETS[server.name], "+sd", "+r",
                             "127.0.0.1", str(server.dicom_port), *map(str, folders)],
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def wait_all(procs: list[subprocess.Popen], log: pathlib.Path) -> None:
    if any(p.wait() for p in procs):
        raise SystemExit(f"storescu failed, see {log}:\n{log.read_text()[-2000:]}")


def kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def associate(ae: AE, server: Server):
    """An association of the bench's pynetdicom SCU, Nagle off on its side too (pynetdicom leaves it on,
    which adds ~40 ms to a C-FIND whose request goes in two writes)."""
    def nodelay(event) -> None:
        event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ae.associate("127.0.0.1", server.dicom_port, ae_title=AETS[server.name],
                        evt_handlers=[(evt.EVT_CONN_OPEN, nodelay)])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


# -- figures ---------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, work: pathlib.Path, target_dir: pathlib.Path):
        self.work, self.target_dir, self.log = work, target_dir, work / "storescu.log"
        self.problems: list[str] = []
        self.procs: list[subprocess.Popen] = []  # every storescu, killed at exit

    def storescu(self, server: Server, folders: list[pathlib.Path]) -> subprocess.Popen:
        self.procs.append(storescu(server, folders, self.log))
        return self.procs[-1]

    def store(self, server: Server, folders: list[pathlib.Path], expected: int, parallel: bool) -> float:
        """Seconds to store ``folders`` into an emptied server (1 storescu, or one per folder)."""
        wipe(server)
        start = time.perf_counter()
        wait_all([self.storescu(server, [f]) for f in folders] if parallel else
                 [self.storescu(server, folders)], self.log)
        seconds = time.perf_counter() - start
        self.check(server, expected, "C-STORE")
        return seconds

    def check(self, server: Server, expected: int, what: str) -> None:
        if (got := count(server)) != expected:
            self.problems.append(f"{server.name}: {what} left {got} instances of {expected}")

    def move(self, server: Server, study: str, series_uid: str, expected: int) -> float:
        """Seconds of a series-level C-MOVE of the (already stored) large series to storescp."""
        for f in self.target_dir.iterdir():
            f.unlink()
        ae = AE(ae_title="BENCHSCU")
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 300
        query = Dataset()
        query.QueryRetrieveLevel, query.StudyInstanceUID, query.SeriesInstanceUID = "SERIES", study, series_uid
        assoc = associate(ae, server)
        start = time.perf_counter()
        statuses = [s.Status for s, _ in assoc.send_c_move(query, "TARGET", StudyRootQueryRetrieveInformationModelMove)
                    if s]
        seconds = time.perf_counter() - start
        assoc.release()
        received = sum(1 for _ in self.target_dir.iterdir())
        if not statuses or statuses[-1] != 0 or received != expected:
            self.problems.append(f"{server.name}: C-MOVE status {statuses[-1:]} and {received} of {expected} files")
        return seconds

    def http(self, server: Server, busy: Callable[[], bool], at_least: int = 0) -> list[float]:
        """Milliseconds of GET /system, one after the other, while ``busy()`` (or ``at_least`` times)."""
        times = []
        while busy() or len(times) < at_least:
            start = time.perf_counter()
            urllib.request.urlopen(server.url + "/system", timeout=60).read()
            times.append((time.perf_counter() - start) * 1000)
        return times

    def http_under_load(self, server: Server, folders: list[pathlib.Path], expected: int) -> list[float]:
        wipe(server)
        procs = [self.storescu(server, [f]) for f in folders]
        try:
            times = self.http(server, lambda: any(p.poll() is None for p in procs))
        finally:
            wait_all(procs, self.log)
        self.check(server, expected, "C-STORE under HTTP load")
        return times

    def idle_cpu(self, server: Server, associations: int, seconds: float = 10) -> float:
        """% of a core the server process uses over ``seconds`` with ``associations`` open and idle."""
        ae = AE(ae_title="BENCHIDLE")
        ae.add_requested_context(Verification)
        ae.acse_timeout = 30
        assocs = [associate(ae, server)
                  for _ in range(associations)]
        try:
            if not all(a.is_established for a in assocs):
                self.problems.append(f"{server.name}: {sum(not a.is_established for a in assocs)} of "
                                     f"{associations} idle associations refused")
            time.sleep(1)  # let negotiation settle
            before = cpu_seconds(server.proc.pid)
            time.sleep(seconds)
            return (cpu_seconds(server.proc.pid) - before) / seconds * 100
        finally:
            for a in assocs:
                a.abort()

    def find(self, server: Server, repeats: int) -> dict[str, tuple[list[float], int]]:
        """Milliseconds of each query, ``repeats`` times, on one association; and its answer count."""
        ae = AE(ae_title="BENCHSCU")
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        assoc = associate(ae, server)
        out = {}
        try:
            for label, keys in QUERIES:
                query = Dataset()
                query.QueryRetrieveLevel = "STUDY"
                for key in RETURN_KEYS:
                    setattr(query, key, keys.get(key, ""))
                times, answers = [], 0
                for _ in range(repeats):
                    start = time.perf_counter()
                    replies = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
                    times.append((time.perf_counter() - start) * 1000)
                    answers = sum(1 for s, _ in replies if s and s.Status in (0xFF00, 0xFF01))
                    if not replies or not replies[-1][0] or replies[-1][0].Status != 0:
                        self.problems.append(f"{server.name}: C-FIND {label} did not end in success")
                out[label] = (times, answers)
        finally:
            assoc.release()
        return out


def find_dcmtk(server: Server, repeats: int) -> dict[str, float]:
    """Milliseconds per query with DCMTK's findscu (a C client: its own cost per answer is small),
    each query ``repeats`` times on one association (``--repeat``): the time of 1 + ``repeats``
    queries less that of 1, so that the process start-up and the association are left out."""
    def run(keys: dict, times: int) -> float:
        args = [arg for key in RETURN_KEYS for arg in ("-k", f"{key}={keys.get(key, '')}")]
        start = time.perf_counter()
        done = subprocess.run(["findscu", "-q", "-S", "-aet", "BENCHSCU", "-aec", AETS[server.name], "--repeat",
                               str(times), "-k", "QueryRetrieveLevel=STUDY", *args, "127.0.0.1",
                               str(server.dicom_port)], capture_output=True)
        if done.returncode:
            raise SystemExit(f"findscu failed: {done.stderr.decode(errors='replace')[-2000:]}")
        return time.perf_counter() - start

    return {label: (run(keys, 1 + repeats) - run(keys, 1)) / repeats * 1000 for label, keys in QUERIES}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def table(rows: list[tuple[str, float, float, bool]]) -> str:
    """Markdown; a row marked lower-is-better gets Orthanc / ours (the speed-up) in the last column."""
    def times(x: float) -> str:
        return f"{x:.2f}x" if x >= 0.1 else f"{x:.2g}x"

    lines = ["| figure | ours | Orthanc | ours / Orthanc |", "|---|---:|---:|---:|"]
    for label, ours, theirs, lower in rows:
        if lower:
            ratio = f"{times(theirs / ours)} (Orthanc / ours: lower is better)" if ours else "-"
        else:
            ratio = times(ours / theirs) if theirs else "-"
        lines.append(f"| {label} | {ours:.1f} | {theirs:.1f} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--small", type=int, default=2000, help="64x64 instances for C-STORE ingest")
    ap.add_argument("--large", type=int, default=250, help="512x512 instances for C-STORE and C-MOVE")
    ap.add_argument("--find-instances", type=int, default=20000, help="size of the C-FIND database")
    ap.add_argument("--find-repeats", type=int, default=10, help="each query, per round and server")
    ap.add_argument("--find-samples", type=int, default=3,
                    help="findscu runs per round, server and query (the median of all is reported)")
    ap.add_argument("--skip-find", action="store_true", help="no C-FIND figures (its database is slow to make)")
    ap.add_argument("--work-dir", default=None, help="data sets (kept) and the servers' folders")
    a = ap.parse_args()
    work = pathlib.Path(a.work_dir or tempfile.mkdtemp(prefix="dimse-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = str(work)  # where transfers.start_* make the servers' folders
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that the finally below runs
    small = write_set(work / "small", a.small, lambda n: instance(n, per_study=500))
    blobs = functools.cache(lambda: series(a.large, 512))  # one series, made only if not on disk
    large = write_set(work / f"large-{a.large}", a.large, lambda n: blobs()[n], parts=1)
    head = dcmread(next(large[0].glob("*.dcm")), stop_before_pixels=True)
    large_mb = megabytes(large)
    target_dir = work / "target"
    shutil.rmtree(target_dir, ignore_errors=True)
    target_dir.mkdir()
    target_port = free_port()
    target = subprocess.Popen(["storescp", "-aet", "TARGET", "-od", str(target_dir), str(target_port)],
                              stdout=open(work / "storescp.log", "wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    servers: list[Server] = []
    bench = Bench(work, target_dir)
    try:
        for name in AETS:
            servers.append(start(name, target_port))
        results: dict[str, dict[str, list[float]]] = {s.name: {} for s in servers}
        for r in range(a.rounds):
            for server in servers if r % 2 == 0 else servers[::-1]:
                out = results[server.name]

                def add(key: str, value: float, out: dict = out) -> None:
                    out.setdefault(key, []).append(value)

                add("store1", a.small / bench.store(server, small, a.small, parallel=False))
                add("store4", a.small / bench.store(server, small, a.small, parallel=True))
                seconds = bench.store(server, large, a.large, parallel=False)
                add("large", a.large / seconds)
                add("largemb", large_mb / seconds)
                add("move", large_mb / bench.move(server, head.StudyInstanceUID, head.SeriesInstanceUID, a.large))
                idle = bench.http(server, lambda: False, at_least=200)
                busy = bench.http_under_load(server, small, a.small)
                add("http50", statistics.median(idle))
                add("http95", percentile(idle, 95))
                add("load50", statistics.median(busy))
                add("load95", percentile(busy, 95))
                add("loadn", len(busy))
                wipe(server)
                add("cpu0", bench.idle_cpu(server, 0))
                add("cpu20", bench.idle_cpu(server, 20))
                print(f"round {r + 1}, {server.name}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in out.items()),
                      file=sys.stderr)
        finds: dict[str, dict[str, tuple[list[float], int]]] = {}
        dcmtk_finds: dict[str, dict[str, list[float]]] = {}
        if not a.skip_find:
            db = write_set(work / f"find-{a.find_instances}", a.find_instances, instance)
            for server in servers:
                bench.store(server, db, a.find_instances, parallel=True)
            for r in range(a.rounds):
                for server in servers if r % 2 == 0 else servers[::-1]:
                    for label, (times, answers) in bench.find(server, a.find_repeats).items():
                        finds.setdefault(server.name, {}).setdefault(label, ([], answers))[0].extend(times)
                    for _ in range(a.find_samples):
                        for label, ms in find_dcmtk(server, 5 * a.find_repeats).items():
                            dcmtk_finds.setdefault(server.name, {}).setdefault(label, []).append(ms)
        ours, theirs = results["ours"], results["orthanc"]

        def row(label: str, key: str, lower: bool = False) -> tuple[str, float, float, bool]:
            return label, statistics.median(ours[key]), statistics.median(theirs[key]), lower

        rows = [row(f"C-STORE {a.small} x 64x64, 1 association (instances/s)", "store1"),
                row(f"C-STORE {a.small} x 64x64, 4 associations (instances/s)", "store4"),
                row(f"C-STORE {a.large} x 512x512, 1 association (instances/s)", "large"),
                row(f"C-STORE {a.large} x 512x512, 1 association (MB/s)", "largemb"),
                row(f"C-MOVE {a.large} x 512x512 to storescp (MB/s)", "move"),
                row("GET /system idle, p50 (ms)", "http50", True),
                row("GET /system idle, p95 (ms)", "http95", True),
                row("GET /system during 4 x storescu, p50 (ms)", "load50", True),
                row("GET /system during 4 x storescu, p95 (ms)", "load95", True),
                row("CPU, no association, 10 s (% of a core)", "cpu0", True),
                row("CPU, 20 idle associations, 10 s (% of a core)", "cpu20", True)]
        for label, _ in QUERIES if finds else []:
            (mine, n_mine), (other, n_other) = finds["ours"][label], finds["orthanc"][label]
            rows.append((f"C-FIND STUDY {label}, {n_mine} answers (ms)", statistics.median(mine),
                         statistics.median(other), True))
            if n_mine != n_other:
                bench.problems.append(f"C-FIND {label}: ours {n_mine} answers, Orthanc {n_other}")
        for label, _ in QUERIES if finds else []:
            rows.append((f"C-FIND STUDY {label}, DCMTK findscu (ms)", statistics.median(dcmtk_finds["ours"][label]),
                         statistics.median(dcmtk_finds["orthanc"][label]), True))
        print(f"\n{a.rounds} round(s), medians; large set {large_mb:.0f} MB; HTTP under load: "
              f"{statistics.median(ours['loadn']):.0f} (ours) / {statistics.median(theirs['loadn']):.0f} (Orthanc) "
              f"requests; C-FIND on {a.find_instances} instances, one association reused, "
              f"{a.find_repeats * a.rounds} queries each\n")
        print(table(rows))
        for problem in bench.problems:
            print(f"\n**problem**: {problem}")
    finally:
        for server in servers:
            server.stop()
        for proc in [*bench.procs, target]:
            kill_group(proc)
        if not a.work_dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
