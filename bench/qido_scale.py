"""QIDO-RS on PostgreSQL as the index grows from the yardstick's 20,000 instances to 1,000,000, side
by side with Orthanc 1.10.1 + its PostgreSQL index plugin (Debian ``orthanc-postgresql``) and its
DICOMweb plugin, in one interleaved run.

The yardstick's ``scale`` data set (``../shared/bench/make_dataset.py --preset scale``: 2,000 studies,
20,000 instances, 500 patients) is stored once into each server through STOW-RS. Larger sizes are
made in each server's own database by SQL, while both are stopped: every patient, study, series and
instance is copied with new identifiers (UIDs get ``.k``, PatientID and AccessionNumber ``-k``; names,
dates and modalities stay), and the copies share the original files. Then the yardstick's QIDO
queries run ``--reps`` times per size, the servers taking turns; each answer's result count is
checked against what the copies make it (a fast wrong answer is reported, not counted).

    python ../shared/bench/make_dataset.py --out /tmp/qs-data --preset scale
    python bench/qido_scale.py --data /tmp/qs-data [--sizes 1,10,50] [--reps 15] [--keep /tmp/qs-keep]

With ``--keep`` the cluster and both databases stay in that folder: a later run with the same folder
measures them again without the 30 minutes of building (a larger size adds the missing copies).
"""
from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from psycopg.conninfo import conninfo_to_dict

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from transfers import PLUGIN, free_port, wait_for  # noqa: E402

from tests.postgres import new_database, restart, run_sql, start, stop  # noqa: E402

PG_PLUGIN = "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so"
BOUNDARY = "qidoscale"


# -- servers ------------------------------------------------------------------------------------
class Target:
    """One server: how to start it on its database, and its DICOMweb root."""

    def __init__(self, name: str, uri: str, work: pathlib.Path):
        self.name, self.uri, self.work = name, uri, work
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.connection: http.client.HTTPConnection | None = None  # kept alive between queries

    @property
    def dicomweb(self) -> str:
        return f"http://127.0.0.1:{self.port}/dicom-web"

    def start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        log = open(self.work / "log", "ab")
        if self.name == "ours":
            config = {"HttpPort": self.port, "DicomPort": free_port(), "StorageDirectory": str(self.work / "files"),
                      "Backends": {"Index": "postgresql"}, "PostgreSQL": {"ConnectionUri": self.uri}}
            (self.work / "config.json").write_text(json.dumps(config))
            command = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=",
                       "dicomweb", "--config", str(self.work / "config.json")]
        else:
            params = conninfo_to_dict(self.uri)
            config = {"Name": "orthanc", "HttpPort": self.port, "DicomPort": free_port(),
                      "StorageDirectory": str(self.work / "files"), "IndexDirectory": str(self.work / "files"),
                      "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "Plugins": [PG_PLUGIN, PLUGIN],
                      "PostgreSQL": {"EnableIndex": True, "EnableStorage": False, "Host": params["host"],
                                     "Port": int(params["port"]), "Database": params["dbname"],
                                     "Username": params["user"], "Password": "", "Lock": False},
                      "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
            (self.work / "config.json").write_text(json.dumps(config))
            command = ["Orthanc", str(self.work / "config.json")]
        self.proc = subprocess.Popen(command, cwd=self.work, stdout=log, stderr=subprocess.STDOUT)
        wait_for(f"http://127.0.0.1:{self.port}/system", timeout=600)

    def stop(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def stow_all(target: Target, files: list[pathlib.Path], clients: int = 4, batch: int = 50) -> None:
    chunks = [files[i:i + batch] for i in range(0, len(files), batch)]
    lock = threading.Lock()
    errors: list[str] = []

    def client() -> None:
        while True:
            with lock:
                if not chunks or errors:
                    return
                chunk = chunks.pop()
            body = b"".join(f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + p.read_bytes()
                            + b"\r\n" for p in chunk) + f"--{BOUNDARY}--\r\n".encode()
            request = urllib.request.Request(target.dicomweb + "/studies", data=body, method="POST", headers={
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
                "Accept": "application/dicom+json"})
            try:
                with urllib.request.urlopen(request, timeout=600) as answer:
                    answer.read()
            except Exception as e:  # noqa: BLE001 - reported
                errors.append(f"{target.name}: {e}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(errors[0])


# -- copies in SQL ------------------------------------------------------------------------------
UID_SUFFIXED = {"ours": ("'StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID'", "'PatientID', 'AccessionNumber'"),
                "orthanc": ("(32, 13), (32, 14), (8, 24)", "(16, 32), (8, 80)")}

# Orthanc's resource IDs (ours are the same): SHA-1 of "PatientID|StudyUID|SeriesUID|SOPUID" down to
# the resource's level, as five groups of 8 hex digits; a copy's ID from its own suffixed identifiers.
PUBLIC_ID = """CREATE OR REPLACE FUNCTION bench_public_id(pid TEXT, uids TEXT[], k INT) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
  SELECT substr(h, 1, 8) || '-' || substr(h, 9, 8) || '-' || substr(h, 17, 8) || '-' || substr(h, 25, 8)
         || '-' || substr(h, 33, 8)
  FROM (SELECT encode(digest(pid || '-' || k || coalesce((SELECT string_agg('|' || u || '.' || k, '' ORDER BY o)
                                                          FROM unnest(uids) WITH ORDINALITY AS t(u, o)), ''),
                             'sha1'), 'hex') AS h) AS x $$"""


def paths_sql(name: str, offset: int) -> str:
    """A table ``bench_paths(id, pid, uids)``: each original resource's PatientID and UIDs down to it."""
    if name == "ours":
        resources, rid, parent, level, tags, tid = "resources", "internal", "parent", "level", "main_tags", "internal"
        tag = {0: "tag = 'PatientID'", 1: "tag = 'StudyInstanceUID'", 2: "tag = 'SeriesInstanceUID'",
               3: "tag = 'SOPInstanceUID'"}
    else:
        resources, rid, parent, level, tags, tid = "resources", "internalid", "parentid", "resourcetype", \
            "maindicomtags", "id"
        tag = {0: "(taggroup, tagelement) = (16, 32)", 1: "(taggroup, tagelement) = (32, 13)",
               2: "(taggroup, tagelement) = (32, 14)", 3: "(taggroup, tagelement) = (8, 24)"}
    below = " ".join(f"WHEN {n} THEN {cond}" for n, cond in tag.items() if n)
    return f"""CREATE TABLE bench_paths AS WITH RECURSIVE p(id, lvl, pid, uids) AS (
        SELECT r.{rid}, 0, m.value::TEXT, ARRAY[]::TEXT[] FROM {resources} r JOIN {tags} m ON m.{tid} = r.{rid}
        WHERE r.{level} = 0 AND {tag[0].replace("tag", "m.tag")} AND r.{rid} < {offset}
      UNION ALL
        SELECT c.{rid}, p.lvl + 1, p.pid, p.uids || (m.value::TEXT COLLATE "default") FROM p
        JOIN {resources} c ON c.{parent} = p.id JOIN {tags} m ON m.{tid} = c.{rid} AND CASE p.lvl + 1 {below} END)
      SELECT id, pid, uids FROM p"""


def copy_sql(name: str, offset: int, first: int, last: int, columns: list[str]) -> list[str]:
    """Statements that add copies ``first..last`` of the original rows (internal ids below ``offset``);
    ``columns``: those of our instances table."""
    uids, suffixed = UID_SUFFIXED[name]
    k = f"generate_series({first}, {last}) AS k"
    setup = ["CREATE EXTENSION IF NOT EXISTS pgcrypto", PUBLIC_ID, "DROP TABLE IF EXISTS bench_paths",
             paths_sql(name, offset), "CREATE INDEX ON bench_paths(id)"]
    if name == "ours":
        def tagged(table: str) -> str:
            return (f"INSERT INTO {table} SELECT internal + k * {offset}, tag, "
                    f"CASE WHEN tag IN ({uids}) THEN value || '.' || k WHEN tag IN ({suffixed}) THEN value || '-' || k "
                    f"ELSE value END, CASE WHEN tag IN ({uids}) THEN norm || '.' || k "
                    f"WHEN tag IN ({suffixed}) THEN norm || '-' || k ELSE norm END "
                    f"FROM {table}, {k} WHERE internal < {offset}")
        copied = ", ".join(f"internal + k * {offset}" if c == "internal" else c for c in columns)
        return setup + [
            f"INSERT INTO resources (internal, public_id, level, parent, last_update, last_update_ts, stable) "
            f"SELECT internal + k * {offset}, bench_public_id(p.pid, p.uids, k), level, parent + k * {offset}, "
            f"last_update, last_update_ts, stable FROM resources JOIN bench_paths p ON p.id = internal, {k} "
            f"WHERE internal < {offset}",
            tagged("main_tags"), tagged("study_patient_tags"),
            # Each copy's main tags in one piece (resource_tags), from its rows.
            f"INSERT INTO resource_tags SELECT internal, CAST(json_object_agg(tag, value) AS TEXT) FROM main_tags "
            f"WHERE internal >= {offset} * {first} AND internal < {offset} * ({last} + 1) GROUP BY internal",
            f"INSERT INTO instances ({', '.join(columns)}) SELECT {copied} FROM instances, {k} "
            f"WHERE internal < {offset}",
            f"INSERT INTO series_info (internal, expected_instances, qido_extras) SELECT internal + k * {offset}, "
            f"expected_instances, qido_extras FROM series_info, {k} WHERE internal < {offset}",
            "SELECT setval(pg_get_serial_sequence('resources', 'internal'), (SELECT max(internal) FROM resources))",
            "DROP TABLE bench_paths", "ANALYZE"]

    def tagged_orthanc(table: str) -> str:
        return (f"INSERT INTO {table} SELECT id + k * {offset}, taggroup, tagelement, "
                f"CASE WHEN (taggroup, tagelement) IN ({uids}) THEN value || '.' || k "
                f"WHEN (taggroup, tagelement) IN ({suffixed}) THEN value || '-' || k ELSE value END "
                f"FROM {table}, {k} WHERE id < {offset}")
    # Orthanc's triggers count resources and bytes row by row into one row of GlobalIntegers (fine for
    # one store, hours for a million rows in one statement): off while copying, their effects redone.
    first_id = first * offset
    return setup + [
        "ALTER TABLE resources DISABLE TRIGGER USER", "ALTER TABLE attachedfiles DISABLE TRIGGER USER",
        f"INSERT INTO resources (internalid, resourcetype, publicid, parentid) SELECT internalid + k * {offset}, "
        f"resourcetype, bench_public_id(p.pid, p.uids, k), parentid + k * {offset} FROM resources "
        f"JOIN bench_paths p ON p.id = internalid, {k} WHERE internalid < {offset}",
        tagged_orthanc("maindicomtags"), tagged_orthanc("dicomidentifiers"),
        f"INSERT INTO metadata SELECT id + k * {offset}, type, value, revision FROM metadata, {k} WHERE id < {offset}",
        f"INSERT INTO attachedfiles SELECT id + k * {offset}, filetype, uuid, compressedsize, uncompressedsize, "
        f"compressiontype, uncompressedhash, compressedhash, revision FROM attachedfiles, {k} WHERE id < {offset}",
        "SELECT setval(pg_get_serial_sequence('resources', 'internalid'), (SELECT max(internalid) FROM resources))",
        f"INSERT INTO patientrecyclingorder (patientid) SELECT internalid FROM resources WHERE resourcetype = 0 "
        f"AND internalid >= {first_id} ORDER BY internalid",
        "UPDATE globalintegers g SET value = c.n FROM (SELECT resourcetype + 2 AS key, count(*) AS n FROM resources "
        "GROUP BY resourcetype) c WHERE g.key = c.key",
        "UPDATE globalintegers SET value = (SELECT sum(compressedsize) FROM attachedfiles) WHERE key = 0",
        "UPDATE globalintegers SET value = (SELECT sum(uncompressedsize) FROM attachedfiles) WHERE key = 1",
        "ALTER TABLE resources ENABLE TRIGGER USER", "ALTER TABLE attachedfiles ENABLE TRIGGER USER",
        "DROP TABLE bench_paths", "ANALYZE"]


# -- queries ------------------------------------------------------------------------------------
def queries(manifest: dict, copies: int) -> list[tuple[str, str, dict, int]]:
    """The yardstick's QIDO queries on the scale set (its big-series query aside: that set is not
    loaded), with the result counts ``copies`` copies make them: (label, path, params, expected)."""
    scale = manifest["studies"]
    n = len(scale)
    fam = collections.Counter(s["patient_name"].split("^")[0] for s in scale)
    target = max(5, n // 100)
    family = min(sorted(fam), key=lambda f: (abs(fam[f] - target), f))
    prefix = family[:4]
    n_prefix = sum(1 for s in scale if s["patient_name"].upper().startswith(prefix))
    givens = collections.Counter(s["patient_name"].split("^")[1] for s in scale)
    given = min(sorted(givens), key=lambda g: (abs(givens[g] - 4 * target), g))
    n_fuzzy = sum(1 for s in scale if any(c.upper().startswith(given) for c in s["patient_name"].split("^")))
    pat = scale[n // 2]
    n_pid = sum(1 for s in scale if s["patient_id"] == pat["patient_id"])
    year = 2018 if any(s["date"].startswith("2018") for s in scale) else int(scale[0]["date"][:4])
    n_date = sum(1 for s in scale if f"{year}0101" <= s["date"] <= f"{year}1231")
    n_ct = sum(1 for s in scale if s["modality"] == "CT" or any(x["modality"] == "CT" for x in s["series"]))
    n_mr = sum(1 for s in scale for x in s["series"] if x["modality"] == "MR")
    st = scale[n // 3]
    se = st["series"][0]
    acc = scale[n // 4]
    total = n * copies
    offset = max(0, total - 150)
    return [
        ("studies?limit=100", "/studies", {"limit": "100"}, min(100, total)),
        (f"studies?limit=100&offset={offset}", "/studies", {"limit": "100", "offset": str(offset)},
         min(100, total - offset)),
        (f"studies?PatientName={prefix}*", "/studies", {"PatientName": prefix + "*"}, n_prefix * copies),
        (f"studies?PatientName={prefix.lower()}* (case-insensitive)", "/studies", {"PatientName": prefix.lower() + "*"},
         n_prefix * copies),
        (f"studies?PatientName={given.lower()}&fuzzymatching=true", "/studies",
         {"PatientName": given.lower(), "fuzzymatching": "true"}, n_fuzzy * copies),
        (f"studies?StudyDate={year}0101-{year}1231", "/studies", {"StudyDate": f"{year}0101-{year}1231"},
         n_date * copies),
        ("studies?PatientID=<exact>", "/studies", {"PatientID": pat["patient_id"]}, n_pid),
        ("studies?AccessionNumber=<exact>", "/studies", {"AccessionNumber": acc["accession"]}, 1),
        ("studies?ModalitiesInStudy=CT&limit=100", "/studies", {"ModalitiesInStudy": "CT", "limit": "100"},
         min(100, n_ct * copies)),
        ("studies?ModalitiesInStudy=CT (all)", "/studies", {"ModalitiesInStudy": "CT"}, n_ct * copies),
        ("series?Modality=MR&limit=100", "/series", {"Modality": "MR", "limit": "100"}, min(100, n_mr * copies)),
        ("studies/{uid}/series", f"/studies/{st['uid']}/series", {}, len(st["series"])),
        ("studies/{uid}/series/{uid}/instances", f"/studies/{st['uid']}/series/{se['uid']}/instances", {},
         len(se["instances"])),
    ]


def timed(target: Target, path: str, params: dict) -> tuple[float, int | None]:
    """One query over the target's kept-alive connection (as the yardstick's clients and viewers
    query: a new TCP connection per query would add the same millisecond to both servers)."""
    url = urllib.parse.urlsplit(target.dicomweb + path + ("?" + urllib.parse.urlencode(params) if params else ""))
    started = time.perf_counter()
    for attempt in (1, 2):
        if target.connection is None:
            target.connection = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
        try:
            target.connection.request("GET", f"{url.path}?{url.query}" if url.query else url.path,
                                      headers={"Accept": "application/dicom+json"})
            answer = target.connection.getresponse()
            body = answer.read()
            break
        except (http.client.HTTPException, OSError):
            target.connection.close()
            target.connection = None
            if attempt == 2:
                raise
            started = time.perf_counter()
    elapsed = time.perf_counter() - started
    if answer.status >= 300:
        return elapsed, None if answer.status != 204 else 0
    if answer.status == 204 or not body.strip():
        return elapsed, 0
    return elapsed, len(json.loads(body))


def measure(targets: list[Target], qs: list, reps: int, budget: float) -> dict:
    """p50/p95 (ms) and wrong counts of each query on each target, the targets taking turns. A
    query's first call is a warm-up, unless it took over ``budget`` seconds: then it is the only one."""
    samples = {(t.name, q[0]): [] for t in targets for q in qs}
    wrong = {}
    for rep in range(reps + 1):
        for t in (targets if rep % 2 == 0 else list(reversed(targets))):
            for label, path, params, expected in qs:
                taken = samples[(t.name, label)]
                if taken and sum(taken) / 1000 > budget:
                    continue  # a slow query: enough of it
                seconds, got = timed(t, path, params)
                if got != expected:
                    wrong[(t.name, label)] = f"{got}/{expected}"
                if rep > 0 or seconds > budget:
                    taken.append(seconds * 1000)
    return {f"{name}|{label}": {"p50": statistics.median(v), "p95": percentile(v, 0.95), "n": len(v),
                                "wrong": wrong.get((name, label))} for (name, label), v in samples.items()}


def report(figures: dict, qs: list, instances: int, copies: int, args) -> None:
    print(f"\n## {instances:,} instances ({copies} x the scale set), {args.reps} reps (one call for a query over "
          f"{args.budget:.0f} s), ms p50 (p95)\n")
    print("| query | ours | Orthanc + PostgreSQL | ratio (p50) |")
    print("|---|---|---|---|")
    for label, *_ in qs:
        o, r = figures[f"ours|{label}"], figures[f"orthanc|{label}"]
        print(f"| {label} | {cell(o)} | {cell(r)} | {r['p50'] / o['p50']:.1f}x |", flush=True)


def cell(figure: dict) -> str:
    """``p50 (p95)``, and the result count when it was wrong."""
    wrong = f" [{figure['wrong']}]" if figure["wrong"] else ""
    spread = f"{figure['p50']:.1f} ({figure['p95']:.1f})" if figure["n"] > 1 else f"{figure['p50']:.0f} (1 call)"
    return spread + wrong


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


COLUMNS = "SELECT column_name FROM information_schema.columns WHERE table_name = 'instances' ORDER BY ordinal_position"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the folder make_dataset.py wrote (with scale/)")
    parser.add_argument("--sizes", default="1,10,50", help="copies of the scale set to measure at (1 = 20,000)")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--budget", type=float, default=30, help="a query slower than this (seconds) is called "
                        "once per server and size")
    parser.add_argument("--out", help="write the figures as JSON here")
    parser.add_argument("--keep", help="a folder that keeps the cluster and both databases between runs: the "
                        "first run builds them there, later ones reuse them (a larger size adds copies)")
    args = parser.parse_args()
    manifest = json.loads((pathlib.Path(args.data) / "scale" / "manifest.json").read_text())
    files = sorted((pathlib.Path(args.data) / "scale").rglob("*.dcm"))
    sizes = sorted(int(s) for s in args.sizes.split(","))
    work = pathlib.Path(args.keep) if args.keep else pathlib.Path(tempfile.mkdtemp(prefix="qido-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)  # PostgreSQL runs as its own user when we are root
    state_file = work / "state.json"
    state = json.loads(state_file.read_text()) if args.keep and state_file.exists() else None
    if args.keep and not state and (work / "pg").exists():
        raise SystemExit(f"{work}: a cluster without state.json (a first run that did not finish): remove the folder")
    if state:
        admin = restart(str(work / "pg"), state["port"])
        targets = [Target(name, state["uris"][name], work / name) for name in ("ours", "orthanc")]
    else:
        admin = start(str(work / "pg"))
        targets = [Target(name, new_database(admin), work / name) for name in ("ours", "orthanc")]
    figures: dict = {}
    try:
        for t in targets:
            t.start()
            if state:
                continue
            started = time.perf_counter()
            stow_all(t, files)
            print(f"{t.name}: {len(files)} instances stored by STOW-RS in {time.perf_counter() - started:.0f} s",
                  flush=True)
        if not state:
            columns = [r[0] for r in run_sql(targets[0].uri, COLUMNS)]
            offsets = {t.name: run_sql(t.uri, "SELECT max(internal) + 1 FROM resources" if t.name == "ours"
                                       else "SELECT max(internalid) + 1 FROM resources")[0][0] for t in targets}
            state = {"port": int(conninfo_to_dict(admin)["port"]), "uris": {t.name: t.uri for t in targets},
                     "columns": columns, "offsets": offsets, "copies": 1}
            if args.keep:
                state_file.write_text(json.dumps(state))
        for size in sizes:
            if size < state["copies"]:
                print(f"size {size}: the kept databases hold {state['copies']} copies already; skipped", flush=True)
                continue
            if size > state["copies"]:
                for t in targets:
                    t.stop()
                for t in targets:
                    started = time.perf_counter()
                    for statement in copy_sql(t.name, state["offsets"][t.name], state["copies"], size - 1,
                                              state["columns"]):
                        run_sql(t.uri, statement)
                    print(f"{t.name}: copies {state['copies']}..{size - 1} made in SQL in "
                          f"{time.perf_counter() - started:.0f} s", flush=True)
                state["copies"] = size
                if args.keep:
                    state_file.write_text(json.dumps(state))
                for t in targets:
                    t.start()
            copies = state["copies"]
            instances = run_sql(targets[0].uri, "SELECT count(*) FROM instances")[0][0]
            figures[instances] = measure(targets, queries(manifest, copies), args.reps, args.budget)
            report(figures[instances], queries(manifest, copies), instances, copies, args)
    finally:
        for t in targets:
            t.stop()
        stop(str(work / "pg"))
        if args.out:
            pathlib.Path(args.out).write_text(json.dumps(figures, indent=1))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{os.cpu_count()} cores; PostgreSQL {run_version()}")


def run_version() -> str:
    try:
        return subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


if __name__ == "__main__":
    main()
