"""Orthanc's ``Dictionary`` configuration: entries added to the DICOM dictionary, mostly private tags.

Each entry is ``"gggg,eeee": [VR, Name, MinMultiplicity, MaxMultiplicity(, PrivateCreator)]``. A private
entry is matched by its group, its private creator and the low byte of its element: PS3.5 §7.8.1 lets a
file reserve any block (``gggg,xx00-xxFF``) for a creator, and Orthanc's book spells such entries both
ways (``"00e1,10c2"`` and ``"2001,5f"``). An entry gives the name shown in Orthanc's JSON views, and the VR
of the element when the file does not say it (implicit VR, or UN).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydicom.valuerep import VR

KNOWN_VRS = frozenset(v.value for v in VR) - {"US or SS", "OB or OW", "US or OW", "US or SS or OW"}


@dataclass(frozen=True)
class Entry:
    tag: int
    vr: str
    name: str
    creator: str | None


class TagDictionary:
    """The configured entries, looked up by tag (public) or by group, creator and element byte (private)."""

    def __init__(self, entries: list[Entry] | None = None):
        self.public: dict[int, Entry] = {}
        self.private: dict[tuple[int, str, int], Entry] = {}
        self.by_name: dict[str, Entry] = {}
        for entry in entries or ():
            if entry.creator is None:
                self.public[entry.tag] = entry
            else:
                self.private[(entry.tag >> 16, entry.creator, entry.tag & 0xFF)] = entry
            self.by_name[entry.name] = entry

    def lookup(self, tag: int, creator: str | None) -> Entry | None:
        """The entry of an element; ``creator`` is the private creator of its block, if any."""
        if creator is None or not (tag >> 16) & 1:
            return self.public.get(tag)
        return self.private.get((tag >> 16, creator, tag & 0xFF))


def parse_dictionary(raw: Any) -> TagDictionary:
    """The ``Dictionary`` configuration section; raise ValueError naming the bad entry."""
    if not isinstance(raw, dict):
        raise ValueError("configuration key Dictionary must be of type dict")
    entries = []
    for key, value in raw.items():
        where = f"configuration key Dictionary.{key}"
        group, sep, element = str(key).partition(",")
        try:
            if not sep or len(group) != 4 or not 1 <= len(element) <= 4:
                raise ValueError
            tag = (int(group, 16) << 16) | int(element, 16)
        except ValueError:
            raise ValueError(f"{where}: the key must be a tag such as \"0009,1001\"") from None
        if not isinstance(value, list) or len(value) not in (4, 5):
            raise ValueError(f"{where} must be [VR, Name, MinMultiplicity, MaxMultiplicity(, PrivateCreator)]")
        vr, name, low, high = value[:4]
        creator = value[4] if len(value) == 5 else None
        if vr not in KNOWN_VRS:
            raise ValueError(f"{where}: unknown VR {vr!r}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: the name must be a non-empty string")
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in (low, high)):
            raise ValueError(f"{where}: the multiplicities must be integers")
        if creator is not None and (not isinstance(creator, str) or not creator):
            raise ValueError(f"{where}: the private creator must be a non-empty string")
        if creator is not None and not (tag >> 16) & 1:
            raise ValueError(f"{where}: a private creator is only for private (odd) groups")
        entries.append(Entry(tag, vr, name, creator))
    return TagDictionary(entries)
