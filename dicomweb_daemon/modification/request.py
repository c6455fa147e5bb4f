"""The body of ``POST /{level}/{id}/modify`` and ``/anonymize``, parsed once into a frozen
``Modification`` that the cpu threads apply to each instance.

Everything that can be checked without the instances is checked here and answered 400 with details
naming the problem, before any job starts: unknown tags, malformed paths, values that do not cast to
their VR, and the identifiers that need ``Force`` (test_modify_need_force_to_change_uids): replacing,
removing or keeping PatientID, StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID. Since Orthanc
1.11.3, ``Force`` also allows changing a parent's identifier below its level (PatientID of a study);
modifying a patient requires a new PatientID (Orthanc book, "Modification of Patients") unless
``Force`` is given (Orthanc >= 1.11.3 renames a patient in place: test_rename_patient_with_multiple_studies).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydicom.uid import UID

from ..anonymization import profiles
from ..dicom.private_dictionary import TagDictionary
from ..errors import BadRequest
from .paths import TagPath, bad, known_vr, parse_path, parse_tag, tag_name
from .uids import Pseudonyms
from .values import convert

LEVELS = ("Patient", "Study", "Series", "Instance")
_LEVEL_NAMES = {"patient": "Patient", "patients": "Patient", "study": "Study", "studies": "Study",
                "series": "Series", "instance": "Instance", "instances": "Instance"}
PATIENT_ID, STUDY_UID, SERIES_UID, SOP_UID = 0x00100020, 0x0020000D, 0x0020000E, 0x00080018
IDENTIFIERS = (PATIENT_ID, STUDY_UID, SERIES_UID, SOP_UID)  # Orthanc's "DICOM identifiers"
PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})


@dataclass(frozen=True)
class Item:
    """One item of a sequence given in ``Replace``: (tag, VR from the dictionaries or None, value,
    private creator), the value being JSON or, for a sequence, a tuple of Items."""

    fields: tuple[tuple[int, str | None, Any, str | None], ...]


@dataclass(frozen=True)
class Replacement:
    """One ``Replace`` entry. ``vr`` is the dictionaries' (None when unknown: the instance's element
    decides, else UN); ``value`` is the JSON string or None, or a tuple of Items for a sequence."""

    path: TagPath
    value: Any
    vr: str | None
    creator: str | None = None


@dataclass(frozen=True)
class Modification:
    """A parsed request; ``anonymize`` tells ``/anonymize`` from ``/modify``."""

    anonymize: bool
    level: str
    replace: tuple[Replacement, ...] = ()
    remove: tuple[TagPath, ...] = ()
    keep: tuple[TagPath, ...] = ()
    remove_private_tags: bool = False  # /modify
    keep_private_tags: bool = False  # /anonymize
    private_creator: str | None = None
    force: bool = False
    keep_source: bool = True
    transcode: str | None = None
    lossy_quality: int | None = None  # of a lossy Transcode, 1-100 (None: the codec's default)
    dicom_version: str = profiles.DEFAULT_EDITION
    options: frozenset[str] = frozenset()
    keep_labels: bool = False
    dry_run: bool = False  # answer what would be done to each element, change nothing
    asynchronous: bool = False
    priority: int = 0
    pseudonyms: Pseudonyms | None = None
    orthanc_profile: bool = True  # Table E.1-1 as Orthanc applies it (docs/anonymization.md)
    unknown_keys: tuple[str, ...] = field(default=(), compare=False)

    @property
    def customised(self) -> bool:
        """Orthanc writes De-identification Method only for a request that is not customised."""
        return bool(self.keep or self.replace or self.remove or self.keep_private_tags or self.options)

    def rules(self) -> profiles.ProfileRules:
        return profiles.rules(self.dicom_version, self.options, orthanc=self.orthanc_profile)

    def top_level(self, tag: int) -> tuple[bool, Replacement | None, bool]:
        """(kept, replacement, removed) for a top-level tag."""
        kept = any(p.top_level and p.tag == tag for p in self.keep)
        removed = any(p.top_level and p.tag == tag for p in self.remove)
        replacement = next((r for r in self.replace if r.path.top_level and r.path.tag == tag), None)
        return kept, replacement, removed


def normalize_level(level: str) -> str:
    """``Patient``/``Study``/``Series``/``Instance`` from a level or a route segment (``studies``)."""
    found = _LEVEL_NAMES.get(str(level).lower())
    if found is None:
        raise ValueError(f"unknown level {level!r} (known: {', '.join(LEVELS)})")
    return found


def parse_modification(body: Any, level: str, *, anonymize: bool, dictionary: TagDictionary | None = None,
                       pseudonyms: Pseudonyms | None = None, lossy_quality: int | None = None) -> Modification:
    """The ``Modification`` of a request body (a JSON object, its text, or empty for ``{}``);
    ``lossy_quality``: a lossy Transcode's quality when the body gives no ``LossyQuality``."""
    level = normalize_level(level)
    body = _as_object(body)
    get = _Getter(body)
    creator = get.string("PrivateCreator")
    replace = tuple(_replacement(key, value, dictionary, creator) for key, value in get.mapping("Replace").items())
    remove = tuple(parse_path(p, dictionary)[0] for p in get.array("Remove"))
    keep = tuple(parse_path(p, dictionary)[0] for p in get.array("Keep"))
    force = get.boolean("Force", False)
    _check_conflicts(replace, remove, keep)
    _check_identifiers(replace, remove, keep, force, level, anonymize)
    if anonymize:
        version = body.get("DicomVersion", profiles.DEFAULT_EDITION)
        if version not in profiles.ACCEPTED_EDITIONS:
            raise bad(f"Unknown specific version of the DICOM standard: {version} "
                      f"(known: {', '.join(profiles.ACCEPTED_EDITIONS)})")
        try:
            options = profiles.parse_options(get.array("Options"))
        except ValueError as e:
            raise bad(str(e)) from None
    else:
        if "Options" in body:
            raise bad('"Options" (PS3.15 Annex E options) only applies to /anonymize')
        version, options = profiles.DEFAULT_EDITION, frozenset()
    transcode = get.string("Transcode")
    if transcode is not None and not UID(transcode).is_transfer_syntax:
        raise bad(f'"Transcode": {transcode!r} is not a transfer syntax UID')
    lossy_quality = get.integer("LossyQuality", lossy_quality)
    if lossy_quality is not None and not 1 <= lossy_quality <= 100:
        raise bad(f'"LossyQuality" must be from 1 to 100, not {lossy_quality}')
    asynchronous = get.boolean("Asynchronous", None)
    if asynchronous is None:
        asynchronous = not get.boolean("Synchronous", True)
    return Modification(
        anonymize=anonymize, level=level, replace=replace, remove=remove, keep=keep,
        remove_private_tags=get.boolean("RemovePrivateTags", False),
        keep_private_tags=get.boolean("KeepPrivateTags", False), private_creator=creator, force=force,
        keep_source=get.boolean("KeepSource", True), transcode=transcode, lossy_quality=lossy_quality,
        dicom_version=version, options=options,
        keep_labels=get.boolean("KeepLabels", False), dry_run=get.boolean("DryRun", False),
        asynchronous=asynchronous, priority=get.integer("Priority", 0),
        pseudonyms=pseudonyms, unknown_keys=tuple(sorted(set(body) - _KNOWN_KEYS)))


_KNOWN_KEYS = frozenset({"Replace", "Remove", "Keep", "RemovePrivateTags", "KeepPrivateTags", "PrivateCreator",
                         "Force", "KeepSource", "Transcode", "LossyQuality", "DicomVersion", "Options", "KeepLabels",
                         "DryRun", "Asynchronous", "Synchronous", "Priority"})


def _as_object(body: Any) -> dict:
    if body is None or body in (b"", ""):
        return {}
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise bad(f"the body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise bad("the body must be a JSON object")
    return body


class _Getter:
    """Typed access to the body's members, with Orthanc's messages for wrong types."""

    def __init__(self, body: dict):
        self.body = body

    def boolean(self, key: str, default: Any) -> Any:
        value = self.body.get(key, default)
        if value is not default and not isinstance(value, bool):
            raise bad(f'Member "{key}" should be a Boolean value')
        return value

    def integer(self, key: str, default: int | None) -> int | None:
        value = self.body.get(key, default)
        if value is not default and (isinstance(value, bool) or not isinstance(value, int)):
            raise bad(f'Member "{key}" should be an integer value')
        return value

    def string(self, key: str) -> str | None:
        value = self.body.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise bad(f'Member "{key}" should be a non-empty string')
        return value

    def array(self, key: str) -> list:
        value = self.body.get(key, [])
        if not isinstance(value, list):
            raise bad(f'Member "{key}" should be an array of tags')
        return value

    def mapping(self, key: str) -> dict:
        value = self.body.get(key, {})
        if not isinstance(value, dict):
            raise bad(f'Member "{key}" should be an object associating tags with values')
        return value


def _replacement(key: str, value: Any, dictionary: TagDictionary | None, creator: str | None) -> Replacement:
    path, entry = parse_path(key, dictionary)
    if path.tag in PIXEL_TAGS:
        raise bad(f"{key}: pixel data cannot be replaced (use Transcode to change its encoding)")
    vr = known_vr(path.tag, entry)
    owner = entry.creator if entry is not None and entry.creator else creator
    return Replacement(path, _value(value, path.tag, vr, key, dictionary, owner), vr,
                       owner if path.private else None)


def _value(value: Any, tag: int, vr: str | None, where: str, dictionary: TagDictionary | None,
           creator: str | None) -> Any:
    """The JSON value checked against the VR; a sequence's items parsed into Items."""
    if vr == "SQ" or (vr is None and isinstance(value, list)):
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise bad(f"{where}: {tag_name(tag)} is a sequence: give an array of objects, not {value!r}")
        return tuple(_item(item, f"{where}[{i}]", dictionary, creator) for i, item in enumerate(value))
    if vr is None:  # a private or unknown tag: the instance's element will tell the VR
        if value is not None and not isinstance(value, str):
            raise bad(f"{where}: {tag_name(tag)} takes a string, not {type(value).__name__} {value!r}")
        return value
    alternatives = vr.split(" or ")  # "US or SS": the instance's element will choose; one must fit
    for alternative in alternatives[:-1]:
        try:
            convert(value, alternative, tag, where)
            return value
        except BadRequest:
            pass
    convert(value, alternatives[-1], tag, where)  # raises BadRequest when it does not cast
    return value


def _item(item: dict, where: str, dictionary: TagDictionary | None, creator: str | None) -> Item:
    fields = []
    for key, value in item.items():
        tag, entry = parse_tag(key, dictionary)
        if tag >> 16 in (0x0000, 0x0002, 0xFFFE) or tag in PIXEL_TAGS:
            raise bad(f"{where}: {key} cannot be set in a sequence item")
        vr = known_vr(tag, entry)
        owner = entry.creator if entry is not None and entry.creator else creator
        fields.append((tag, vr, _value(value, tag, vr, f"{where}.{key}", dictionary, owner),
                       owner if (tag >> 16) & 1 else None))
    return Item(tuple(fields))


def _same(a: TagPath, b: TagPath) -> bool:
    return a.parents == b.parents and a.tag == b.tag


def _check_conflicts(replace: tuple[Replacement, ...], remove: tuple[TagPath, ...], keep: tuple[TagPath, ...]) -> None:
    """One path, one instruction: Orthanc silently picks one (Keep over Replace over Remove); a
    request that asks two things of an attribute is answered 400 instead."""
    named = [("replaced", r.path) for r in replace] + [("removed", p) for p in remove] + [("kept", p) for p in keep]
    for i, (what, path) in enumerate(named):
        for other_what, other in named[i + 1:]:
            if _same(path, other):
                if what == other_what:
                    raise bad(f"{path} and {other} name the same attribute twice in one list")
                raise bad(f"{path} is both {what} and {other_what}: choose one")


def _check_identifiers(replace, remove, keep, force: bool, level: str, anonymize: bool) -> None:
    for verb, paths in (("replaced", [r.path for r in replace]), ("removed", remove), ("kept", keep)):
        for path in paths:
            if not path.top_level or path.tag not in IDENTIFIERS:
                continue
            if not force:
                raise bad(f'Marking tag "{tag_name(path.tag)}" as to be {verb} requires the "Force" option '
                          "to be set to true")
            if verb == "removed":  # Orthanc refuses it too, Force or not
                raise bad(f"{tag_name(path.tag)} cannot be removed: it identifies the instance in its hierarchy")
    new_patient_id = any(r.path.top_level and r.path.tag == PATIENT_ID and r.value for r in replace)
    if level == "Patient" and not anonymize and not new_patient_id and not force:
        raise bad('modifying a patient requires a new PatientID in "Replace", or "Force": true')
