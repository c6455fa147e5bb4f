"""Fixtures that start real daemons (``twistd -n dicomweb``) on free loopback ports."""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.object_store import objects, storage_config
from tests.postgres import index_config, run_sql

ROOT = Path(__file__).resolve().parent.parent
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def pytest_collection_modifyitems(config, items):
    """On a bucket (DICOMWEB_TEST_STORAGE=s3), only the storage-facing modules run, less the tests
    that look into a data folder."""
    if os.environ.get("DICOMWEB_TEST_STORAGE", "") != "s3":
        return
    kept = [i for i in items if i.get_closest_marker("storage") and not i.get_closest_marker("local_files")]
    config.hook.pytest_deselected(items=[i for i in items if i not in kept])
    items[:] = kept


def _port_range() -> range:
    """This test process's ports: below the kernel's ephemeral range (where the port of an outgoing
    connection, or another process's ``bind(0)``, cannot take one between its check and its use),
    a part of its own per pytest-xdist worker."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral = int(f.read().split()[0])
    except (OSError, ValueError):
        ephemeral = 32768
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0) % 4
    size = (ephemeral - 12000) // 4
    return range(12000 + worker * size, 12000 + (worker + 1) * size)


_PORTS = _port_range()
_next_port = itertools.count(os.getpid() % len(_PORTS))


def free_port() -> int:
    """A port nothing listens on, taken in turn from this process's range (never twice in a row of
    its length); ``bind(0)`` when none of them is free."""
    for _ in range(len(_PORTS)):
        port = _PORTS[next(_next_port) % len(_PORTS)]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """A running daemon: its URL, data folder, log, and a way to stop or kill it."""

    def __init__(self, folder: Path, config: dict | None = None, env: dict | None = None):
        self.folder = folder
        self.port = free_port()
        self.data = folder / "data"
        # Parsing in threads keeps test daemons light; test_ingest_workers covers worker processes.
        self.dicom_port = free_port()
        conf = {"HttpPort": self.port, "DicomPort": self.dicom_port, "StorageDirectory": str(self.data),
                "StableAge": 2, "IngestWorkers": 0, **index_config()}
        for key, value in storage_config().items():
            conf[key] = {**conf.get(key, {}), **value}
        for key, value in (config or {}).items():  # a test's Backends add to the index's and storage's
            conf[key] = {**conf[key], **value} if key == "Backends" and key in conf else value
        self.config_path = folder / "config.json"
        self.config = conf
        self.index_folder = Path(conf.get("IndexDirectory") or conf["StorageDirectory"])  # SQLite's file
        self.config_path.write_text(json.dumps(conf))
        self.users = conf.get("RegisteredUsers") or {}
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "daemon.log"
        self.env = dict(os.environ, **(env or {}))
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> Daemon:
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [*TWISTD, "-n", "--pidfile=", "dicomweb", "--config", str(self.config_path)],
            cwd=self.folder, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited ({self.proc.returncode}):\n{self.log_path.read_text()}")
            try:
                requests.get(self.url + "/tools/now", timeout=1, auth=self.auth())
                return
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or recovering
                time.sleep(0.1)
        raise RuntimeError("daemon did not answer in time")

    @property
    def bucket(self) -> str | None:
        """The S3 bucket holding this daemon's files, or None (its data folder holds them)."""
        return self.config.get("AwsS3Storage", {}).get("BucketName") \
            if self.config.get("Backends", {}).get("Storage") == "s3" else None

    def stored_files(self) -> set[str]:
        """The uuids of the files in this daemon's storage (its bucket, or ``ab/cd/uuid`` in its data
        folder), whatever the spool holds aside."""
        if self.bucket:
            return {name.rsplit("/", 1)[-1].removesuffix(".dcm") for name in objects(self.bucket)}
        return {p.name for p in self.data.glob("??/??/*") if len(p.name) == 36}

    def sql(self, query: str, params=()) -> list[tuple]:
        """Run SQL (SQLite's spelling) on this daemon's index, whichever engine holds it, committed:
        what a test reads or plants behind a stopped daemon's back."""
        uri = self.config.get("PostgreSQL", {}).get("ConnectionUri")
        if uri:
            return run_sql(uri, query, params)
        with contextlib.closing(sqlite3.connect(self.index_folder / "index.sqlite")) as db, db:
            return db.execute(query, params).fetchall()

    def drop_index(self) -> None:
        """The index deleted (its tables, on PostgreSQL), the storage left as it is."""
        uri = self.config.get("PostgreSQL", {}).get("ConnectionUri")
        if uri:
            run_sql(uri, "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            return
        for path in self.index_folder.glob("index.sqlite*"):
            path.unlink()

    def auth(self):
        return next(iter(self.users.items())) if self.users else None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(self.url + path, timeout=60, **kw)

    def post(self, path: str, data=None, **kw) -> requests.Response:
        return requests.post(self.url + path, data=data, timeout=60, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return requests.delete(self.url + path, timeout=60, **kw)

    def put(self, path: str, data=None, **kw) -> requests.Response:
        return requests.put(self.url + path, data=data, timeout=60, **kw)

    def store(self, path_or_bytes) -> dict:
        data = Path(path_or_bytes).read_bytes() if not isinstance(path_or_bytes, bytes) else path_or_bytes
        r = self.post("/instances", data)
        assert r.status_code == 200, r.text
        return r.json()


def wait_job(server, job_id: str, timeout: float = 120) -> dict:
    """The job once it has ended (Success or Failure), read from ``server``'s /jobs."""
    deadline = time.time() + timeout
    while (job := server.get(f"/jobs/{job_id}").json())["State"] not in ("Success", "Failure"):
        assert time.time() < deadline, f"job {job_id} did not end: {job}"
        time.sleep(0.1)
    return job


def raw_answer(port: int, request: bytes, timeout: float = 10) -> bytes:
    """What the daemon sends back for raw ``request`` bytes on a new connection, until it closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


@pytest.fixture
def make_daemon(tmp_path):
    """Start daemons with a given config; all are stopped at the end of the test."""
    started: list[Daemon] = []

    def make(config: dict | None = None, start: bool = True, name: str = "d", env: dict | None = None) -> Daemon:
        folder = tmp_path / f"{name}{len(started)}"
        folder.mkdir()
        d = Daemon(folder, config, env)
        started.append(d)
        return d.start() if start else d

    yield make
    for d in started:
        d.stop()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """One daemon shared by the tests of a module."""
    d = Daemon(tmp_path_factory.mktemp("daemon")).start()
    yield d
    d.stop()


@pytest.fixture
def pools():
    """The daemon's thread pools, running for one in-process test (parsing in threads)."""
    from dicomweb_daemon.threads import ThreadsService

    threads = ThreadsService(workers=0)
    threads.startService()
    yield threads
    threads.stopService()


def local_daemon_in(folder: Path, config: dict | None = None):
    """The daemon's state (settings, storage, index, ingest...) on a real index (SQLite, or PostgreSQL
    with DICOMWEB_TEST_POSTGRESQL) and real files under ``folder``, without HTTP: what in-process
    tests call directly."""
    from dicomweb_daemon.config.settings import validate
    from dicomweb_daemon.interfaces import IIndex
    from dicomweb_daemon.registry import select
    from dicomweb_daemon.service import Daemon
    from dicomweb_daemon.storage.filesystem import FilesystemStorage

    settings, _ = validate({"StorageDirectory": str(folder / "data"), "SyncWrites": False, **index_config(),
                            **(config or {})})
    index = select(IIndex, settings.backends["Index"], "Backends.Index").open(settings)
    return Daemon(settings, FilesystemStorage().open(settings), index)


@pytest.fixture
def local_daemon(tmp_path, pools):
    """:func:`local_daemon_in` a test's own folder, with the pools running."""
    return local_daemon_in(tmp_path)
