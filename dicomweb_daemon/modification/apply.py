"""One instance through a ``Modification``, in place: pure, for a cpu thread, no HTTP nor index.

The order is Orthanc's ("replacements are applied after all the tags to anonymize have been removed",
Orthanc book): one walk of the data set applies the profile (anonymize) or the level's new UIDs
(modify), private-tag removal and the UID map, leaving alone what the request keeps, replaces or
removes; then anonymization adds its pseudonyms and marks; then ``Remove``, then ``Replace``; last, the
file meta information follows the SOP Instance UID and SOP Class UID. Pixel data is never touched.

**New UIDs per level** (observed on Orthanc 1.10.1): modifying an instance gives it a new SOP Instance
UID; a series, a new Series Instance UID and SOP Instance UIDs; a study or a patient, new Study, Series
and SOP Instance UIDs. A new PatientID renews them as a patient's modification does, even on an instance
(observed), and a new Study (Series) Instance UID renews those below it. Other UIDs stay (issue 94: not
the Frame of Reference UID). Anonymizing gives a new UID to every attribute whose action is U, at any
depth.

**References stay consistent**: a UID the job's ``UidMap`` knows (drawn for an attribute above, kept,
or replaced with ``Force``) becomes its new value in every UI element of every instance, at any depth,
unless the request keeps that element. Orthanc does this when anonymizing; when modifying, it leaves the
references to the old UIDs, which we do not. For the result not to depend on the order the instances
are rewritten in, call ``prepare_uids`` with the identifiers of all the job's instances first.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping

from pydicom import config
from pydicom.charset import convert_encodings
from pydicom.datadict import private_dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from ..anonymization import profiles
from ..dicom.tags import tag_key
from .paths import EVERY, bad, tag_name
from .plan import DatasetNode, ElementNode, build_plan, element_nodes, item_nodes
from .request import LEVELS, PATIENT_ID, PIXEL_TAGS, SERIES_UID, SOP_UID, STUDY_UID, Item, Modification, normalize_level
from .uids import UidMap
from .values import convert, encodes

REGENERATED = {"Instance": (SOP_UID,), "Series": (SERIES_UID, SOP_UID),
               "Study": (STUDY_UID, SERIES_UID, SOP_UID), "Patient": (STUDY_UID, SERIES_UID, SOP_UID)}
# An identifier the request replaces moves the instance to another parent: the levels below it are
# renewed as if that parent were modified (observed: a new PatientID at the instance level renews the
# study and series UIDs too; the others by analogy, a series cannot span two studies).
_PARENT_LEVEL = ((PATIENT_ID, "Patient"), (STUDY_UID, "Study"), (SERIES_UID, "Series"))
TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UR", "UT"})
STRING_VRS = TEXT_VRS | {"UI"}
UTF8 = "ISO_IR 192"
# What the walk must read the value of (items to walk, UIDs to map), or whose VR it must learn first:
# a raw element read with implicit VR has none (None), one written as UN may be a UID or a sequence.
_CONVERTED_VRS = frozenset({"SQ", "UI", "UN", None})

__all__ = ["apply", "dry_run", "prepare_uids", "REGENERATED"]


def apply(ds: Dataset, m: Modification, uid_map: UidMap, level: str | None = None) -> None:
    """Rewrite ``ds`` (and its ``file_meta``) as ``m`` asks, at ``level`` (default: the request's)."""
    _Run(m, uid_map, level, None).run(ds)


def dry_run(ds: Dataset, m: Modification, uid_map: UidMap, level: str | None = None) -> list[dict]:
    """What ``apply`` would do, per element path: ``{"path", "tag", "action"}`` with action removed,
    emptied, replaced, added, uid or kept; ``ds`` and ``uid_map`` are left as they are."""
    actions: dict[str, dict] = {}

    def record(path: str, tag: int, action: str) -> None:
        actions[path] = {"path": path, "tag": tag_key(tag), "action": action}

    _Run(m, uid_map.copy(), level, record).run(copy.deepcopy(ds))
    return list(actions.values())


def prepare_uids(m: Modification, uid_map: UidMap, identifiers: Iterable[Mapping[int | str, str]],
                 level: str | None = None) -> None:
    """Enter in ``uid_map`` the new values of the job's identifiers before any instance is rewritten
    (e.g. each instance's StudyInstanceUID, SeriesInstanceUID and SOPInstanceUID from the index), so
    that a reference rewritten before the instance it points to gets its new UID all the same."""
    run = _Run(m, uid_map, level, None)
    for found in identifiers:
        for key, uid in found.items():
            tag = key if isinstance(key, int) else tag_for_keyword(key)
            if tag is not None and uid:
                run.prepare(tag, str(uid).strip())


def regenerated(m: Modification, level: str) -> tuple[int, ...]:
    """The UIDs a modification at ``level`` renews (those it keeps or replaces are then left to it)."""
    for tag, parent in _PARENT_LEVEL:
        if LEVELS.index(parent) < LEVELS.index(level) and m.top_level(tag)[1] is not None:
            return REGENERATED[parent]
    return REGENERATED[level]


Record = Callable[[str, int, str], None]


class _Run:
    """One application of a request to one instance (the state of the walk)."""

    def __init__(self, m: Modification, uid_map: UidMap, level: str | None, record: Record | None):
        self.m, self.uid_map, self.record = m, uid_map, record
        self.level = normalize_level(level) if level else m.level
        self.rules = m.rules() if m.anonymize else None
        self.strip_private = not m.keep_private_tags if m.anonymize else m.remove_private_tags
        self.regenerated = () if m.anonymize else regenerated(m, self.level)
        self.plan = build_plan(m)
        self.new_texts: list[str] = []

    # -- the UIDs a request keeps, replaces or regenerates -----------------------------------------
    def prepare(self, tag: int, uid: str) -> None:
        kept, replacement, _removed = self.m.top_level(tag)
        if kept:
            self.uid_map.pin(uid, uid)
        elif replacement is not None:
            if isinstance(replacement.value, str) and replacement.value and "\\" not in replacement.value:
                self.uid_map.pin(uid, replacement.value.strip())
        elif self.regenerates(tag, nested=False):
            self.uid_map.map(uid)

    def regenerates(self, tag: int, nested: bool) -> bool:
        if self.rules is not None:
            return self.rules.action(tag, nested) == "U"
        return not nested and tag in self.regenerated

    def run(self, ds: Dataset) -> None:
        old_patient_id = str(ds.get("PatientID", "") or "")
        named = [p for p in self.m.keep] + [r.path for r in self.m.replace]
        for tag in {p.tag for p in named if p.top_level}:
            if tag in ds and ds[tag].VR == "UI":
                for uid in _values(ds[tag].value):
                    self.prepare(tag, uid)
        self.walk(ds, [self.plan], "", nested=False)
        if self.m.anonymize:
            self.mark_anonymized(ds, old_patient_id)
        for path in self.m.remove:
            for target, prefix in _targets(ds, path.parents):
                if path.tag in target:
                    del target[path.tag]
                    self.note(prefix, path.tag, "removed")
        for replacement in self.m.replace:
            for target, prefix in _targets(ds, replacement.path.parents):
                where = prefix + tag_name(replacement.path.tag)
                tag = private_target(target, replacement.path.tag, replacement.creator, where)
                existed = tag in target
                target[tag] = self.element(target, tag, replacement.vr, replacement.value, replacement.creator, where)
                self.note(prefix, tag, "replaced" if existed else "added")
        self.fit_character_set(ds)
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            if "SOPInstanceUID" in ds:
                meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            if "SOPClassUID" in ds:
                meta.MediaStorageSOPClassUID = ds.SOPClassUID

    def note(self, prefix: str, tag: int, action: str) -> None:
        if self.record is not None:
            self.record(prefix + tag_name(tag), tag, action)

    # -- the walk ----------------------------------------------------------------------------------
    def walk(self, ds: Dataset, nodes: list[DatasetNode], prefix: str, nested: bool) -> None:
        kept_blocks: set[tuple[int, int]] = set()  # private blocks whose creator must stay
        stripped: list[int] = []
        for tag in [int(t) for t in ds.keys()]:
            elements = element_nodes(nodes, tag)
            private = bool((tag >> 16) & 1)
            if tag in PIXEL_TAGS or any(e.kept for e in elements):
                self.note(prefix, tag, "kept")
                if private:
                    kept_blocks.add(_block(tag))
                continue
            if any(e.replaced or e.removed for e in elements):
                if private:
                    kept_blocks.add(_block(tag))  # a replaced private element keeps its creator
                continue  # done after the walk
            protected = any(e.protects for e in elements)
            if private and self.strip_private and not protected:
                stripped.append(tag)
                self.note(prefix, tag, "removed")
                continue
            if private:
                kept_blocks.add(_block(tag))
            self.element_in_walk(ds, tag, elements, protected, prefix, nested, private)
        for tag in stripped:
            if _is_creator(tag) and _block(tag) in kept_blocks:
                self.note(prefix, tag, "kept")
            else:
                del ds[tag]

    def element_in_walk(self, ds: Dataset, tag: int, elements: list[ElementNode], protected: bool, prefix: str,
                        nested: bool, private: bool) -> None:
        code = self.rules.action(tag, nested) if self.rules is not None and not private else None
        if code == "X" and not protected:
            del ds[tag]
            self.note(prefix, tag, "removed")
            return
        emptied = code in ("Z", "C", "D") and not protected
        if not emptied and ds.get_item(tag).VR not in _CONVERTED_VRS:
            # Kept as it is: left raw (not decoded here, to be encoded again when written).
            self.note(prefix, tag, "kept")
            return
        elem = ds[tag]
        if emptied and nested and self.m.orthanc_profile and elem.VR not in STRING_VRS:
            # Orthanc 1.10.1, observed: inside an item, emptying a sequence or a binary value removes it.
            del ds[tag]
            self.note(prefix, tag, "removed")
            return
        if emptied:
            # C: we cannot clean a value while keeping its meaning, so we empty it (the safe side).
            dummy = profiles.DUMMY_VALUES.get(elem.VR) if code == "D" and not self.m.orthanc_profile else None
            if dummy is not None:
                elem.value = dummy
                self.note(prefix, tag, "replaced")
            else:
                self.note(prefix, tag, "kept" if elem.is_empty else "emptied")
                elem.value = elem.empty_value
            return
        if elem.VR == "SQ":
            self.note(prefix, tag, "kept")
            for index, item in enumerate(elem.value):
                self.walk(item, item_nodes(elements, index), f"{prefix}{tag_name(tag)}[{index}].", True)
            return
        if elem.VR == "UI" and not elem.is_empty:
            self.note(prefix, tag, "uid" if self.remap(elem, self.regenerates(tag, nested)) else "kept")
            return
        self.note(prefix, tag, "kept")

    def remap(self, elem: DataElement, regenerate: bool) -> bool:
        """New UIDs in ``elem``: drawn if ``regenerate``, else the map's; True if one changed."""
        old = _values(elem.value)
        new = [uid if not uid else self.uid_map.map(uid) if regenerate else self.uid_map.get(uid) or uid for uid in old]
        if new == old:
            return False
        elem.value = new[0] if len(new) == 1 else new
        return True

    # -- what anonymization adds -----------------------------------------------------------------
    def mark_anonymized(self, ds: Dataset, old_patient_id: str) -> None:
        pseudonyms = self.m.pseudonyms
        if pseudonyms is None:
            if self.uid_map.secret is None:
                raise ValueError("anonymizing needs the job's Pseudonyms (or a UidMap with a secret)")
            pseudonyms = self.uid_map.pseudonyms(old_patient_id)
        for tag, vr, value in ((profiles.PATIENT_NAME, "PN", pseudonyms.patient_name),
                               (profiles.PATIENT_ID, "LO", pseudonyms.patient_id),
                               (profiles.PATIENT_IDENTITY_REMOVED, "CS", "YES"),
                               (profiles.DEIDENTIFICATION_METHOD, "LO",
                                None if self.m.customised else profiles.deidentification_method(self.m.dicom_version))):
            if value is None or any(self.m.top_level(tag)):
                continue
            existed = tag in ds
            ds[tag] = DataElement(tag, vr, value, validation_mode=config.IGNORE)
            self.note("", tag, "replaced" if existed else "added")

    # -- elements built from the request ----------------------------------------------------------
    def element(self, target: Dataset, tag: int, vr: str | None, value, creator: str | None, where: str) -> DataElement:
        vr = _resolve_vr(target, tag, vr, value, creator)
        if vr == "SQ":
            if not isinstance(value, tuple):
                raise bad(f"{where}: {tag_name(tag)} is a sequence in this instance: give an array of objects")
            return DataElement(tag, vr, Sequence([self.item(item, f"{where}[{i}]") for i, item in enumerate(value)]),
                               validation_mode=config.IGNORE)
        if isinstance(value, tuple):
            raise bad(f"{where}: {tag_name(tag)} is not a sequence ({vr}) in this instance")
        converted = convert(value, vr, tag, where)
        if vr in TEXT_VRS:
            self.new_texts.extend(_values(converted))
        # Orthanc stores what it is given (a UID "Hello4"): we checked what must cast, pydicom need not warn.
        return DataElement(tag, vr, converted, validation_mode=config.IGNORE)

    def item(self, item: Item, where: str) -> Dataset:
        ds = Dataset()
        for tag, vr, value, creator in item.fields:
            here = f"{where}.{tag_name(tag)}"
            tag = private_target(ds, tag, creator, here)
            ds[tag] = self.element(ds, tag, vr, value, creator, here)
        return ds

    def fit_character_set(self, ds: Dataset) -> None:
        """Text the request wrote that the data set's Specific Character Set cannot encode: switch the
        data set to UTF-8 (PS3.5 §6.1.2.3), once every value is decoded with the old one."""
        if not self.new_texts:
            return
        given = ds.get(0x00080005)
        codecs = convert_encodings(given.value) if given is not None and given.value else ["ascii"]  # §6.1.2.1
        if all(any(encodes(text, codec) for codec in codecs) for text in self.new_texts):
            return
        for _elem in ds.iterall():
            pass  # converting each raw element decodes it with the character set it was read with
        ds.SpecificCharacterSet = UTF8


def _values(value) -> list[str]:
    if isinstance(value, list | MultiValue):
        return [str(v).strip() for v in value]
    return [str(value).strip()] if value is not None else []


def _block(tag: int) -> tuple[int, int]:
    """(group, block) of a private element or of the creator that reserves it (PS3.5 §7.8.1)."""
    element = tag & 0xFFFF
    return tag >> 16, element if element < 0x100 else element >> 8


def _is_creator(tag: int) -> bool:
    return 0x10 <= (tag & 0xFFFF) <= 0xFF


def _targets(ds: Dataset, parents) -> list[tuple[Dataset, str]]:
    """The data sets a path's parents lead to in ``ds``, with their path prefixes."""
    found = [(ds, "")]
    for seq_tag, index in parents:
        following = []
        for target, prefix in found:
            if seq_tag not in target or target[seq_tag].VR != "SQ":
                continue
            items = target[seq_tag].value
            indexes = range(len(items)) if index is EVERY else [index] if index < len(items) else []
            following += [(items[i], f"{prefix}{tag_name(seq_tag)}[{i}].") for i in indexes]
        found = following
    return found


def private_target(ds: Dataset, tag: int, creator: str | None, where: str) -> int:
    """Where a private element goes in ``ds``: with a creator, element ``tag & 0xFF`` of the block
    that creator reserves (reserving one, the tag's own block if free, when it has none); without,
    the tag as given, whose block must already be reserved (a private element needs its creator)."""
    group, element = tag >> 16, tag & 0xFFFF
    if not group & 1 or element < 0x1000:
        return tag
    if creator is None:
        if tag in ds or (group << 16 | element >> 8) in ds:
            return tag
        raise bad(f'{where}: no private creator reserves {tag_name(tag)} in this instance: give "PrivateCreator"')
    for block in range(0x10, 0x100):
        owner = ds.get(group << 16 | block)
        if owner is not None and str(owner.value).strip() == creator:
            return group << 16 | block << 8 | element & 0xFF
    for block in (element >> 8, *range(0x10, 0x100)):
        if (group << 16 | block) not in ds:
            ds.add_new(group << 16 | block, "LO", creator)
            return group << 16 | block << 8 | element & 0xFF
    raise bad(f"{where}: every private block of group {group:04X} is taken")


def _resolve_vr(ds: Dataset, tag: int, vr: str | None, value, creator: str | None) -> str:
    """The VR of a written element: the dictionaries', else the instance's element's, else UN."""
    if vr and " or " not in vr:
        return vr
    alternatives = vr.split(" or ") if vr else None
    existing = ds[tag] if tag in ds else None
    if existing is not None and existing.VR != "UN" and (alternatives is None or existing.VR in alternatives):
        return existing.VR
    if alternatives:
        return alternatives[0]
    if creator is not None:
        try:
            return private_dictionary_VR(tag, creator).split(" or ")[0]
        except KeyError:
            pass
    if isinstance(value, tuple):
        return "SQ"
    return existing.VR if existing is not None else "UN"
