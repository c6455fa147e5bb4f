"""Writers at once on one PostgreSQL index (index/locking.py), as the threads of one daemon and the
daemons sharing a database write: writes of different patients overlap and those of one patient
wait for each other; a deadlock is run again; the job queue skips rows being claimed; the changes
log is one sequence in commit order; stable events and sweeps are done by one writer at a time.

These run in every pass of the suite, on the suite's PostgreSQL cluster or a throwaway one (SQLite
has one writer: nothing here happens on it)."""
from __future__ import annotations

import threading
import time

import psycopg
import pytest

from dicomweb_daemon.dicom.parsing import parse_buffer
from dicomweb_daemon.index.locking import ROWS, patients, retried
from dicomweb_daemon.index.postgresql import PostgresIndex
from tests.dicom_files import make_ct
from tests.postgres import any_cluster, new_database


class Probe(PostgresIndex):
    """The index with one more write: two rows changed in the order given (a deadlock when two
    threads give opposite orders), the first attempts meeting at a barrier."""

    def __init__(self, dsn: str):
        super().__init__(dsn, owner="probe")
        self.attempts = 0
        self._count = threading.Lock()

    @retried
    def cross(self, first: str, second: str, barrier: threading.Barrier) -> None:
        with self._count:
            self.attempts += 1
            meet = self.attempts <= 2
        with self.transaction(ROWS) as c:
            c.execute("UPDATE globals SET value = value WHERE name = ?", (first,))
            if meet:
                barrier.wait(10)
            c.execute("UPDATE globals SET value = value WHERE name = ?", (second,))


@pytest.fixture
def dsn() -> str:
    return new_database(any_cluster())


@pytest.fixture
def index(dsn):
    return PostgresIndex(dsn, owner="test")


def in_thread(f, *args) -> tuple[threading.Thread, dict]:
    """``f(*args)`` started in a thread; its result (or error) lands in the dict."""
    out: dict = {}

    def run():
        try:
            out["result"] = f(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            out["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def instance(patient: str):
    return parse_buffer(make_ct(patient))


def test_other_patients_are_written_beside_a_patient_being_written(index):
    a, b, a2 = instance("PAT-A"), instance("PAT-B"), instance("PAT-A")
    held, release = threading.Event(), threading.Event()

    def write_a():
        with index.transaction(patients([a.ids[0]])) as c:
            held.set()
            release.wait(20)
            c.execute("SELECT 1")

    holder, _ = in_thread(write_a)
    assert held.wait(10)
    other, out_b = in_thread(index.store, b, "file-b")
    other.join(10)
    assert out_b.get("result") is not None and out_b["result"].status == "Success"

    same, out_a2 = in_thread(index.store, a2, "file-a2")
    same.join(1.0)
    assert same.is_alive(), "a write of the same patient did not wait"
    release.set()
    same.join(10)
    holder.join(10)
    assert out_a2["result"].status == "Success"
    assert index.existing_instances([b.ids[3], a2.ids[3]]) == {b.ids[3], a2.ids[3]}


def test_a_deadlocked_transaction_runs_again(dsn):
    probe = Probe(dsn)
    barrier = threading.Barrier(2)
    one, out_one = in_thread(probe.cross, "SchemaVersion", "StudyPatientTags", barrier)
    two, out_two = in_thread(probe.cross, "StudyPatientTags", "SchemaVersion", barrier)
    one.join(30)
    two.join(30)
    assert "error" not in out_one and "error" not in out_two, (out_one, out_two)
    assert probe.attempts == 3  # PostgreSQL broke the deadlock by failing one: it ran again


def test_the_job_queue_skips_a_job_being_claimed(index, dsn):
    index.create_job("first", "Archive", 0, {}, "20260101T000000")
    index.create_job("second", "Archive", 0, {}, "20260101T000001")
    with psycopg.connect(dsn) as other:  # a transaction of another daemon holds the first job's row
        other.execute("SELECT id FROM jobs WHERE id = 'first' FOR UPDATE")
        claimer, out = in_thread(index.claim_next_job, "me", time.time())
        claimer.join(10)
        assert out.get("result", {}).get("id") == "second"
    assert index.claim_next_job("me", time.time())["id"] == "first"


def test_the_changes_log_is_read_in_commit_order_while_patients_are_stored_at_once(index):
    writers = [in_thread(lambda p=p: [index.store(instance(p), f"{p}-{n}") for n in range(12)])
               for p in ("W1", "W2", "W3", "W4")]
    seen: list[int] = []
    while any(t.is_alive() for t, _ in writers) or not seen or index.changes(seen[-1])["Changes"]:
        # A reader that goes on from the last number it saw misses nothing: no number is
        # committed after a greater one.
        seen += [e["Seq"] for e in index.changes(seen[-1] if seen else 0, 1000)["Changes"]]
    for thread, out in writers:
        thread.join()
        assert "error" not in out, out
    everything = [e["Seq"] for e in index.changes(0, 10_000)["Changes"]]
    assert len(everything) == 4 * (12 * 3 + 1)  # an instance, a series and a study each, a patient per writer
    assert seen == everything


def test_stable_resources_are_marked_by_one_writer_at_a_time(index, dsn):
    index.store(instance("STABLE"), "file-stable")
    other = PostgresIndex(dsn, owner="other")
    held, release = threading.Event(), threading.Event()

    def marking_elsewhere():
        with other.transaction(ROWS) as c:
            assert other.try_lock(c, "stable")
            held.set()
            release.wait(20)

    holder, _ = in_thread(marking_elsewhere)
    assert held.wait(10)
    assert index.mark_stable(0) == 0  # another is at it: this turn is skipped, not waited for
    release.set()
    holder.join(10)
    assert index.mark_stable(0) == 4  # the patient, study, series and instance rows
    assert [e["ChangeType"] for e in index.changes(0)["Changes"]][-3:] == ["StableSeries", "StableStudy",
                                                                          "StablePatient"]


def test_a_sweep_is_held_by_one_daemon(dsn):
    first, second = PostgresIndex(dsn, owner="a"), PostgresIndex(dsn, owner="b")
    held = first.hold("sweep")
    assert held is not None
    assert second.hold("sweep") is None
    held.close()
    again = second.hold("sweep")
    assert again is not None
    again.close()
