"""New UIDs and pseudonyms for one modification or anonymization job.

A job rewrites many instances, one at a time and possibly in several cpu threads: every old UID must
become the same new UID in every instance (a series' UID in its images and in the RT structure set or
segmentation that references them), so the map lives as long as the job and is persisted with it
(``to_dict`` / ``from_dict``).

With a ``secret`` the new UIDs are a keyed hash of the old ones (HMAC-SHA256), so the same study
anonymized twice, one series at a time, or on two daemons sharing the secret, gets the same new UIDs,
and nobody without the secret can link them back. The result is a UUID-derived UID, ``2.25.<int>``
(PS3.5 §B.2, ISO/IEC 9834-8): 128 bits of the hash shaped as a version 4 UUID, at most 44 characters,
well within the 64 of a UI. Without a secret the new UIDs are random (pydicom's ``2.25`` UUID UIDs).
"""
from __future__ import annotations

import hashlib
import hmac
import threading
import uuid
from dataclasses import dataclass

from pydicom.uid import generate_uid

__all__ = ["Pseudonyms", "UidMap", "keyed_uid"]


def _digest(secret: bytes, purpose: str, value: str) -> bytes:
    # The purpose keeps the derivations apart: a UID and a PatientID equal as strings map differently.
    return hmac.new(secret, purpose.encode() + b"\0" + value.encode("utf-8"), hashlib.sha256).digest()


def _uuid(digest: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=digest[:16], version=4)


def keyed_uid(secret: bytes, old: str) -> str:
    """The new UID of ``old`` under ``secret``: ``2.25.`` and the integer of a UUID made of its HMAC."""
    return f"2.25.{_uuid(_digest(secret, 'uid', old)).int}"


@dataclass(frozen=True)
class Pseudonyms:
    """Patient's Name and Patient ID that an anonymization job writes in all its instances (Orthanc:
    ``Anonymized<n>`` and a random UUID, one pair per job)."""

    patient_name: str
    patient_id: str


class UidMap:
    """Old UID -> new UID for one job, thread-safe. ``pin`` imposes a value (a UID the request keeps
    or replaces), ``map`` draws one the first time a UID is seen."""

    def __init__(self, secret: bytes | None = None, mapping: dict[str, str] | None = None):
        if secret is not None and not isinstance(secret, bytes | bytearray):
            raise TypeError("the UID secret must be bytes")
        self.secret = bytes(secret) if secret is not None else None
        self._map: dict[str, str] = dict(mapping or {})
        self._lock = threading.Lock()

    def map(self, old: str) -> str:
        """The new UID of ``old``, drawn (or derived from the secret) the first time."""
        with self._lock:
            new = self._map.get(old)
            if new is None:
                new = keyed_uid(self.secret, old) if self.secret is not None else generate_uid(prefix=None)
                self._map[old] = new
            return new

    def get(self, old: str) -> str | None:
        """The new UID of ``old`` if one was drawn or pinned, else None."""
        with self._lock:
            return self._map.get(old)

    def pin(self, old: str, new: str) -> bool:
        """Make ``new`` the value of ``old`` unless another was drawn already (an instance that
        referenced it was rewritten before); True if ``old`` now maps to ``new``."""
        with self._lock:
            return self._map.setdefault(old, new) == new

    def __contains__(self, old: object) -> bool:
        with self._lock:
            return old in self._map

    def __reduce__(self):
        """Pickled without its lock (a job's map goes to the worker processes, each a copy)."""
        return (UidMap, (self.secret, self.to_dict()))

    def copy(self) -> UidMap:
        """An independent map with the same entries and secret (a dry run draws in a copy)."""
        with self._lock:
            return UidMap(self.secret, self._map)

    def to_dict(self) -> dict[str, str]:
        """The entries, to persist with the job (the secret is not part of them)."""
        with self._lock:
            return dict(self._map)

    @classmethod
    def from_dict(cls, mapping: dict[str, str], secret: bytes | None = None) -> UidMap:
        return cls(secret, mapping)

    def patient_id(self, old: str) -> str:
        """A pseudonymous Patient ID: a UUID (Orthanc's form), derived from the old one with the secret,
        random without it."""
        if self.secret is None:
            return str(uuid.uuid4())
        return str(_uuid(_digest(self.secret, "patient-id", old)))

    def pseudonyms(self, old_patient_id: str, counter: int | None = None) -> Pseudonyms:
        """The pair an anonymization job writes. Orthanc's name is ``Anonymized<counter>`` (a counter
        of the process, given by the caller); with a secret, and no counter, the number is derived from
        the old Patient ID instead, so that two runs write the same bytes."""
        if counter is None:
            if self.secret is None:
                raise ValueError("a counter is needed for the anonymized Patient's Name without a secret")
            counter = int.from_bytes(_digest(self.secret, "patient-name", old_patient_id)[:8], "big") % 10**8
        return Pseudonyms(f"Anonymized{counter}", self.patient_id(old_patient_id))
