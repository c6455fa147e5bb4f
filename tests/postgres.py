"""PostgreSQL for the tests: a throwaway cluster (Debian's ``postgresql`` binaries, on a free loopback
port, in a temp folder), and a new database for each test daemon when the suite runs against it.

    python -m tests.postgres start FOLDER   # prints the admin URI; stop with: python -m tests.postgres stop FOLDER

With ``DICOMWEB_TEST_POSTGRESQL`` set to such an admin URI (or to ``auto``: a throwaway cluster for
the run), every daemon the tests start (and every in-process index) is on PostgreSQL, each in its own
new database; unset, on SQLite.
"""
from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

_cluster: list[str] = []  # the admin URI of the cluster this process started ("auto")


def admin() -> str:
    """The admin URI of the tests' PostgreSQL cluster: ``DICOMWEB_TEST_POSTGRESQL``, or a throwaway
    cluster started at first use (and stopped at exit) when it says ``auto``; empty: SQLite."""
    value = os.environ.get("DICOMWEB_TEST_POSTGRESQL", "")
    return any_cluster() if value == "auto" else value


def any_cluster() -> str:
    """The suite's cluster when it runs on PostgreSQL, else a throwaway one for this process: tests
    of what only PostgreSQL does (concurrent writers) run in every pass."""
    value = os.environ.get("DICOMWEB_TEST_POSTGRESQL", "")
    if value and value != "auto":
        return value
    if not _cluster:
        folder = tempfile.mkdtemp(prefix="dicomweb-pg-")
        _cluster.append(start(folder))
        atexit.register(shutil.rmtree, folder, True)
        atexit.register(stop, folder)
    return _cluster[0]


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"PostgreSQL's {name} is not installed (Debian: apt-get install postgresql)")
    return path


def _as_cluster_owner(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, the command runs as the ``postgres`` user."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def start(folder: str) -> str:
    """A new cluster in ``folder`` (made), started; its admin URI."""
    os.makedirs(folder, exist_ok=True)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = os.path.join(folder, "data")
    subprocess.run(_as_cluster_owner([_bin("initdb"), "-D", data, "-A", "trust", "-U", "dicomweb", "-E", "UTF8",
                                      "--no-sync", "--locale=C.UTF-8"]), check=True, stdout=subprocess.DEVNULL)
    return restart(folder, port)


def restart(folder: str, port: int) -> str:
    """The cluster that ``start`` made in ``folder``, started again on ``port``; its admin URI."""
    # A test cluster: durability traded for speed (the suite's crash tests are about the daemon).
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off " \
              "-c full_page_writes=off -c max_connections=400"
    command = [_bin("pg_ctl"), "-D", os.path.join(folder, "data"), "-o", options, "-l", os.path.join(folder, "log"),
               "-w", "start"]
    subprocess.run(_as_cluster_owner(command), check=True, stdout=subprocess.DEVNULL)
    return f"postgresql://dicomweb@127.0.0.1:{port}/postgres"


def stop(folder: str) -> None:
    subprocess.run(_as_cluster_owner([_bin("pg_ctl"), "-D", os.path.join(folder, "data"), "-m", "immediate",
                                      "stop"]), check=False, stdout=subprocess.DEVNULL)


def new_database(admin_uri: str) -> str:
    """A new, empty database on the cluster of ``admin``; its URI."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"t_{uuid.uuid4().hex[:20]}"
    for attempt in range(20):  # CREATE DATABASE copies template1: one at a time
        try:
            with psycopg.connect(admin_uri, autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{name}"')
            break
        except psycopg.errors.ObjectInUse:
            time.sleep(0.05 * (attempt + 1))
    params = conninfo_to_dict(admin_uri)
    params["dbname"] = name
    return make_conninfo(**params)


def run_sql(uri: str, query: str, params=()) -> list[tuple]:
    """SQL (SQLite's spelling, translated as the daemon translates it) run on a database, committed."""
    import psycopg

    from dicomweb_daemon.index.pg_sql import parameters, translate

    statement, globs = translate(query) if params else (query, ())
    with psycopg.connect(uri, autocommit=True) as c, c.cursor() as cursor:
        cursor.execute(statement, parameters(params, globs) if params else None)
        return cursor.fetchall() if cursor.description is not None else []


def index_config() -> dict:
    """The configuration that puts a test daemon's index on PostgreSQL, or nothing (SQLite)."""
    uri = admin()
    if not uri:
        return {}
    return {"Backends": {"Index": "postgresql"}, "PostgreSQL": {"ConnectionUri": new_database(uri)}}


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "start":
        print(start(sys.argv[2]))
    else:
        stop(sys.argv[2])
