"""The job's UID map: one new UID per old UID, random or derived from a secret, and pseudonyms."""
from __future__ import annotations

import re
import threading

import pytest
from pydicom.uid import UID

from dicomweb_daemon.modification.uids import UidMap, keyed_uid

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
OLD = "1.2.840.113619.2.176.2025.1499492.7391.1171285944.390"


def valid(uid: str) -> bool:
    """PS3.5 §9.1: digits and dots, no leading zero in a component, at most 64 characters."""
    return len(uid) <= 64 and UID(uid).is_valid and all(c == "0" or not c.startswith("0") for c in uid.split("."))


def test_random_uids_are_remembered():
    """Without a secret: a fresh 2.25 UID per old UID, the same one every time it is asked again."""
    uids = UidMap()
    new = uids.map(OLD)
    assert new.startswith("2.25.") and valid(new) and new != OLD
    assert uids.map(OLD) == new and uids.get(OLD) == new and OLD in uids and len(uids.to_dict()) == 1
    assert UidMap().map(OLD) != new  # another job draws another
    assert uids.get("1.2.3") is None


def test_secret_uids_are_deterministic_and_keyed():
    """With a secret, the new UID is a function of the old one and the secret only."""
    a, b = UidMap(b"secret"), UidMap(b"secret")
    assert a.map(OLD) == b.map(OLD) == keyed_uid(b"secret", OLD)
    assert UidMap(b"other").map(OLD) != a.map(OLD)
    assert a.map(OLD + "1") != a.map(OLD)
    assert all(valid(UidMap(bytes([n])).map(f"1.2.{n}")) for n in range(200))


def test_keyed_uid_is_a_uuid_derived_uid():
    """2.25 UIDs are UUID integers (ISO/IEC 9834-8): the hash is shaped as a version 4 UUID."""
    import uuid

    value = int(keyed_uid(b"k", OLD)[len("2.25."):])
    assert value < 2**128 and uuid.UUID(int=value).version == 4


def test_pins():
    """A pinned value wins if nothing was drawn before; a drawn one is never changed."""
    uids = UidMap(b"secret")
    assert uids.pin(OLD, OLD) and uids.map(OLD) == OLD
    drawn = uids.map("1.2.3")
    assert not uids.pin("1.2.3", "9.9") and uids.map("1.2.3") == drawn


def test_persisted_with_the_job():
    """The entries survive a restart of the job (the secret stays out of them)."""
    uids = UidMap()
    new = uids.map(OLD)
    again = UidMap.from_dict(uids.to_dict())
    assert again.map(OLD) == new and b"secret" not in repr(uids.to_dict()).encode()
    copy = uids.copy()
    copy.map("1.2.3")
    assert "1.2.3" not in uids


def test_threads_draw_one_uid_per_old_uid():
    """Instances rewritten in parallel cpu threads see the same new UID."""
    uids, seen = UidMap(), []
    threads = [threading.Thread(target=lambda: seen.append(uids.map(OLD))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1


def test_pseudonyms():
    """Orthanc's pair: Anonymized<n> and a UUID; with a secret both follow the old Patient ID."""
    random_pair = UidMap().pseudonyms("P1", counter=3)
    assert random_pair.patient_name == "Anonymized3" and UUID.fullmatch(random_pair.patient_id)
    with pytest.raises(ValueError, match="counter"):
        UidMap().pseudonyms("P1")
    a, b = UidMap(b"s").pseudonyms("P1"), UidMap(b"s").pseudonyms("P1")
    assert a == b and UUID.fullmatch(a.patient_id) and re.fullmatch(r"Anonymized\d+", a.patient_name)
    assert UidMap(b"s").pseudonyms("P2").patient_id != a.patient_id
    assert UidMap(b"s").patient_id("P1") == a.patient_id != UidMap(b"t").patient_id("P1")
    assert UidMap(b"s").patient_id("P1") != UidMap(b"s").map("P1")[5:]  # purposes are kept apart


def test_secret_must_be_bytes():
    with pytest.raises(TypeError):
        UidMap("secret")
