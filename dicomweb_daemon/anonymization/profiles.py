"""What DICOM PS3.15 Annex E (Application Level Confidentiality Profile) does to each attribute, per
edition of Table E.1-1 and per chosen option, as Orthanc's ``/anonymize`` ``DicomVersion`` selects it.

The tables are data from the standard (``tables/<edition>.json``, see ``generate_tables.py``); this
module turns one edition + options into a ``ProfileRules``: sets of tags per action, and wildcard
patterns. The engine that rewrites a data set asks ``rules.action(tag)`` for each element, recursing
into sequence items (``nested=True``).

Actions: X remove, Z empty value, D dummy value of the VR, C clean (same meaning, no identity), K keep,
U replace the UID by a new one, the same new one for every occurrence of the old one in the request.

**Combined codes.** They mean "the first unless IOD conformance (Type 3 / 2 / 1 in the SOP class)
needs the next one"; we do not know the IOD, and Orthanc 1.10.1 takes the first letter, so do we:
X/Z, X/D, X/Z/D -> X (removed); Z/D -> Z (emptied). X/Z/U* (Referenced Image / Source Image
Sequence...) -> U: Orthanc keeps the sequence and remaps the UIDs inside it.

**Options.** A chosen option's code (K or C; once X: Retain UIDs on Referenced Patient Sequence
before 2023b) replaces the Basic Profile's. Two chosen options that disagree (Retain Long. Full Dates
K and Retain Long. Modif. Dates C on one date) resolve to the most retaining, K before C: the user
asked to retain it. An option whose column an edition lacks (Retain Institution Identity before
2019c, every option in 2008) does nothing. Duplicate rows of the standard (2019c Source Serial
Number, 2023b three AE Titles): the first row counts.

**Orthanc 1.10.1, observed** (``docs/anonymization.md``; ``rules(..., orthanc=True)`` reproduces
it): every table row is applied at every depth, except that D is emptied like Z (no dummy value is
ever written), and the repeating-group rows (50xx,xxxx), (60xx,3000), (60xx,4000) are applied inside
sequence items only, never at the top level. On top of the profile Orthanc replaces the top-level
Patient's Name with ``Anonymized<n>`` (a counter) and Patient ID with a random UUID, removes private
tags at every depth unless ``KeepPrivateTags``, adds Patient Identity Removed = YES, and, when the
request is not customised (no Keep / Replace / Remove, private tags removed), De-identification
Method (``deidentification_method``). In 2008 mode it also removes the four attributes of
``ORTHANC_EXTRA_REMOVALS``. Inside sequence items Orthanc leaves Patient's Name as it was and puts a
fresh random UUID in Patient ID: we do not reproduce that leak (the rules say Z there too).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

from .. import ORTHANC_API_VERSION

EDITIONS = ("2008", "2017c", "2021b", "2023b")
ACCEPTED_EDITIONS = ("2008", "2017c", "2019c", "2021b", "2023b")
DEFAULT_EDITION = "2023b"

OPTIONS = (
    "RetainSafePrivate",
    "RetainUIDs",
    "RetainDeviceIdentity",
    "RetainInstitutionIdentity",
    "RetainPatientCharacteristics",
    "RetainLongFullDates",
    "RetainLongModifiedDates",
    "CleanDescriptors",
    "CleanStructuredContent",
    "CleanGraphics",
)

# One action per code of Table E.1-1; combined codes collapse as the module docstring says.
ACTIONS = {
    "X": "X", "Z": "Z", "D": "D", "C": "C", "K": "K", "U": "U",
    "X/Z": "X", "X/D": "X", "X/Z/D": "X", "Z/D": "Z", "X/Z/U*": "U",
}
_PRECEDENCE = "KCUDZX"  # among chosen options' codes, the first of these wins (the most retaining)

PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
PATIENT_IDENTITY_REMOVED = 0x00120062  # CS "YES", added by every Orthanc anonymization
DEIDENTIFICATION_METHOD = 0x00120063  # LO, see deidentification_method()
# Orthanc's 2008 mode removes these too, though PS3.15-2008 does not list them (all are X from 2017c).
ORTHANC_EXTRA_REMOVALS = {
    "2008": frozenset({0x00101040, 0x00102000, 0x00102154, 0x00321032}),
}

# Values for D when the engine follows the standard (orthanc=False); Orthanc itself writes none.
DUMMY_VALUES = {
    "AE": "ANONYMOUS", "AS": "000Y", "CS": "ANONYMOUS", "DA": "19000101", "DS": "0",
    "DT": "19000101000000", "IS": "0", "LO": "ANONYMOUS", "LT": "ANONYMOUS", "PN": "ANONYMOUS",
    "SH": "ANONYMOUS", "ST": "ANONYMOUS", "TM": "000000", "UC": "ANONYMOUS", "UR": "", "UT": "ANONYMOUS",
    "FL": 0.0, "FD": 0.0, "SL": 0, "SS": 0, "SV": 0, "UL": 0, "US": 0, "UV": 0,
}
PRIVATE = (0x00010000, 0x00010000)  # "(gggg,eeee) where gggg is odd": the group's low bit is set


@dataclass(frozen=True)
class ProfileRules:
    """The tags of one edition + options, by action; ``patterns`` hold the rows with wildcards as
    ``(value, mask, action)``: a tag matches when ``tag & mask == value``."""

    edition: str
    options: frozenset[str]
    remove: frozenset[int]
    clear: frozenset[int]
    dummy: frozenset[int]
    clean: frozenset[int]
    keep: frozenset[int]
    uids: frozenset[int]
    patterns: tuple[tuple[int, int, str], ...]
    patterns_at_top_level: bool = True  # False for Orthanc 1.10.1 (see module docstring)

    def action(self, tag: int, nested: bool = False) -> str | None:
        """X, Z, D, C, K or U for this tag (``nested``: inside a sequence item), None if the profile
        says nothing about it (the element is kept)."""
        for code, tags in (("X", self.remove), ("Z", self.clear), ("U", self.uids), ("K", self.keep),
                           ("C", self.clean), ("D", self.dummy)):
            if tag in tags:
                return code
        for value, mask, code in self.patterns:
            if tag & mask == value and (nested or self.patterns_at_top_level or (value, mask) == PRIVATE):
                return code
        return None


def parse_tag(text: str) -> tuple[int, int]:
    """``(value, mask)`` of a tag as Table E.1-1 writes it: ``(0008,0050)``, ``(50xx,xxxx)``,
    ``(60xx,4000)`` or the private-attributes row. ``xx`` in a group means the even groups of a
    repeating-group range (PS3.5 §7.6), so the group's low bit is part of the mask."""
    if text.startswith("(gggg,eeee)"):
        return PRIVATE
    match = re.fullmatch(r"\(([0-9A-Fa-fx]{4}),([0-9A-Fa-fx]{4})\)", text)
    if not match:
        raise ValueError(f"not a tag of Table E.1-1: {text!r}")
    digits = match.group(1) + match.group(2)
    value = int("".join("0" if c == "x" else c for c in digits), 16)
    mask = int("".join("0" if c == "x" else "F" for c in digits), 16)
    if "x" in match.group(1):
        mask |= 0x00010000
    return value, mask


@cache
def load_table(edition: str) -> dict:
    """One edition's JSON table: ``{"edition", "options", "rows": [{"tag", "name", "basic", ...}]}``."""
    if edition not in ACCEPTED_EDITIONS:
        raise ValueError(f"unknown DICOM edition for anonymization: {edition!r} "
                         f"(known: {', '.join(ACCEPTED_EDITIONS)})")
    text = resources.files(__package__).joinpath("tables", f"{edition}.json").read_text(encoding="utf-8")
    return json.loads(text)


def parse_options(names: Iterable[str]) -> frozenset[str]:
    """The option names given, checked against ``OPTIONS``."""
    chosen = frozenset(names)
    unknown = sorted(chosen - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown anonymization option: {unknown[0]!r} (known: {', '.join(OPTIONS)})")
    return chosen


def row_action(row: dict, options: frozenset[str]) -> str:
    """The action of one table row once the chosen options are applied."""
    codes = [row[name] for name in options if name in row] or [row["basic"]]
    try:
        actions = {ACTIONS[code] for code in codes}
    except KeyError as e:
        raise ValueError(f"unexpected code {e.args[0]!r} for {row['tag']} in Table E.1-1") from None
    return next(code for code in _PRECEDENCE if code in actions)


def rules(edition: str = DEFAULT_EDITION, options: Iterable[str] = frozenset(), *,
          orthanc: bool = False) -> ProfileRules:
    """The rules of ``edition`` with ``options``; ``orthanc`` applies Orthanc 1.10.1's observed
    deviations (D emptied, repeating-group rows nested only, 2008's extra removals)."""
    return _rules(edition, parse_options(options), orthanc)


@lru_cache(maxsize=64)
def _rules(edition: str, options: frozenset[str], orthanc: bool) -> ProfileRules:
    sets: dict[str, set[int]] = {code: set() for code in "XZDCKU"}
    patterns: list[tuple[int, int, str]] = []
    seen: set[tuple[int, int]] = set()
    for row in load_table(edition)["rows"]:
        value, mask = parse_tag(row["tag"])
        if (value, mask) in seen:
            continue
        seen.add((value, mask))
        code = row_action(row, options)
        if orthanc and code == "D":
            code = "Z"
        if mask == 0xFFFFFFFF:
            sets[code].add(value)
        else:
            patterns.append((value, mask, code))
    if orthanc:
        sets["X"] |= ORTHANC_EXTRA_REMOVALS.get(edition, frozenset()) - set().union(*sets.values())
    patterns.sort(key=lambda p: (p[0], p[1]) == PRIVATE)  # private last: repeating groups are even
    return ProfileRules(edition=edition, options=options, remove=frozenset(sets["X"]),
                        clear=frozenset(sets["Z"]), dummy=frozenset(sets["D"]), clean=frozenset(sets["C"]),
                        keep=frozenset(sets["K"]), uids=frozenset(sets["U"]), patterns=tuple(patterns),
                        patterns_at_top_level=not orthanc)


def deidentification_method(edition: str = DEFAULT_EDITION, version: str = ORTHANC_API_VERSION) -> str:
    """The De-identification Method (0012,0063) Orthanc writes, e.g. ``Orthanc 1.10.1 - PS 3.15-2017c
    Table E.1-1 Basic Profile`` (2008: without `` Basic Profile``)."""
    if edition not in ACCEPTED_EDITIONS:
        raise ValueError(f"unknown DICOM edition for anonymization: {edition!r}")
    suffix = "" if edition == "2008" else " Basic Profile"
    return f"Orthanc {version} - PS 3.15-{edition} Table E.1-1{suffix}"


def anonymized_patient_name(counter: int) -> str:
    """Orthanc's replacement Patient's Name: ``Anonymized`` and a counter (1, 2... per process)."""
    return f"Anonymized{counter}"
