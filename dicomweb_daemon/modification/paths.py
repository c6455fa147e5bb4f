"""Tags and paths as ``Replace``, ``Remove`` and ``Keep`` name them.

Orthanc (1.9.4 and later) takes dcmodify's syntax: a tag is a keyword (``PatientName``), a number
(``0010,0010``, ``0010-0010``, ``(0010,0010)``, ``00100010``) or a name of the configured
``Dictionary``; a path goes into sequences with 0-based item indexes or ``[*]`` for every item:
``ReferencedImageSequence[1].ReferencedSOPInstanceUID``. Only the last step names an attribute; the
others name a sequence and an item.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.datadict import dictionary_has_tag, dictionary_VR, keyword_for_tag, tag_for_keyword

from ..dicom.private_dictionary import Entry, TagDictionary
from ..errors import BadRequest

EVERY = None  # the item index of "[*]"
_STEP = re.compile(r"(?P<tag>[^\[\]]+?)\s*(?:\[\s*(?P<index>\*|-?\d+)\s*\])?")
_NUMBER = re.compile(r"\(?([0-9A-Fa-f]{4})[,-]?([0-9A-Fa-f]{4})\)?")


def bad(details: str) -> BadRequest:
    """A 400 answered as Orthanc does (``Bad request``), the details naming the problem."""
    return BadRequest("Bad request", details)


@dataclass(frozen=True)
class TagPath:
    """``parents``: (sequence tag, item index or EVERY) from the top level down; ``tag`` the attribute."""

    parents: tuple[tuple[int, int | None], ...]
    tag: int
    text: str

    @property
    def top_level(self) -> bool:
        return not self.parents

    @property
    def private(self) -> bool:
        return bool((self.tag >> 16) & 1)

    def __str__(self) -> str:
        return self.text


def tag_name(tag: int) -> str:
    """How messages and dry runs name a tag: its keyword, else ``(gggg,eeee)``."""
    return keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def known_vr(tag: int, entry: Entry | None = None) -> str | None:
    """The VR the dictionaries give (configured entry first), None for an unknown or private tag."""
    if entry is not None:
        return entry.vr
    if not (tag >> 16) & 1 and dictionary_has_tag(tag):
        return dictionary_VR(tag)
    return None


def parse_tag(name: str, dictionary: TagDictionary | None = None) -> tuple[int, Entry | None]:
    """A tag and its configured dictionary entry (for names of private tags) from one name."""
    text = name.strip()
    match = _NUMBER.fullmatch(text)
    if match:
        return int(match.group(1) + match.group(2), 16), None
    tag = tag_for_keyword(text)
    if tag is not None:
        return tag, None
    if dictionary is not None and text in dictionary.by_name:
        entry = dictionary.by_name[text]
        return entry.tag, entry
    raise bad(f"unknown DICOM tag {text!r}")


def parse_path(text: object, dictionary: TagDictionary | None = None) -> tuple[TagPath, Entry | None]:
    """One path of a request, checked: sequences before the last step, an item index on each of them,
    no file meta information (PS3.10 §7.1: the daemon writes it)."""
    if not isinstance(text, str) or not text.strip():
        raise bad(f"a tag must be given as a non-empty string, not {text!r}")
    steps = text.split(".")
    parents: list[tuple[int, int | None]] = []
    entry = None
    for position, step in enumerate(steps):
        match = _STEP.fullmatch(step.strip())
        if not match:
            raise bad(f"malformed path {text!r}: {step!r} is not a tag with an optional [index]")
        tag, entry = parse_tag(match.group("tag"), dictionary)
        last = position == len(steps) - 1
        index = match.group("index")
        if last:
            if index is not None:
                raise bad(f"malformed path {text!r}: it must end with a tag, not an item index")
            break
        if index is None:
            raise bad(f"malformed path {text!r}: {step!r} needs an item index such as [0] or [*]")
        if index != "*" and int(index) < 0:
            raise bad(f"malformed path {text!r}: negative item index {index}")
        vr = known_vr(tag, entry)
        if vr is not None and vr != "SQ":
            raise bad(f"malformed path {text!r}: {tag_name(tag)} is not a sequence")
        parents.append((tag, EVERY if index == "*" else int(index)))
    group = tag >> 16
    if group == 0x0002 or group == 0x0000 or group == 0xFFFE:
        raise bad(f"{text!r} is not an attribute of the data set: the file meta information "
                  "(group 0002) is written by the daemon")
    return TagPath(tuple(parents), tag, text.strip()), entry
