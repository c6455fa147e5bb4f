"""Walk the element headers of a stored file: check that every value fits in the bytes, and find
where pixel data and each frame lie, so that frames are later served by ranged reads.

pydicom reads a truncated file without complaint; this walk is our validation (PS3.5 §7.1).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from pydicom.datadict import dictionary_VR

UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}


class TruncatedFile(ValueError):
    """An element claims more bytes than the file holds, or a header is cut."""


@dataclass
class PixelLayout:
    """Where the pixel data value lies: offset and length, and fragments when encapsulated."""

    offset: int
    length: int
    fragments: list[tuple[int, int]] = field(default_factory=list)
    basic_offsets: list[int] = field(default_factory=list)
    encapsulated: bool = False
    element_offset: int = 0  # where the (7FE0,0010) element itself starts (Orthanc's PixelDataOffset)
    vr: str | None = None  # the VR written in the file (explicit VR syntaxes only)


class _Walker:
    def __init__(self, buf, explicit: bool, little: bool):
        self.buf = buf
        self.size = len(buf)
        self.explicit = explicit
        self.e = "<" if little else ">"
        self.pixels: PixelLayout | None = None

    def need(self, pos: int, n: int) -> None:
        if pos + n > self.size:
            raise TruncatedFile(f"element at byte {pos} needs {n} bytes, file ends at {self.size}")

    def header(self, pos: int) -> tuple[int, bytes | None, int, int]:
        """Return (tag, vr, length, value offset) of the element at ``pos``."""
        self.need(pos, 8)
        group, elem = struct.unpack_from(self.e + "HH", self.buf, pos)
        tag = (group << 16) | elem
        if group == 0xFFFE:
            return tag, None, struct.unpack_from(self.e + "L", self.buf, pos + 4)[0], pos + 8
        if not self.explicit:
            return tag, None, struct.unpack_from(self.e + "L", self.buf, pos + 4)[0], pos + 8
        vr = bytes(self.buf[pos + 4 : pos + 6])
        if vr in LONG_VRS:
            self.need(pos, 12)
            return tag, vr, struct.unpack_from(self.e + "L", self.buf, pos + 8)[0], pos + 12
        return tag, vr, struct.unpack_from(self.e + "H", self.buf, pos + 6)[0], pos + 8

    def dataset(self, pos: int, end: int | None, top: bool) -> int:
        """Walk a dataset from ``pos`` to ``end`` (or an item delimiter when None)."""
        limit = self.size if end is None else end
        while pos < limit:
            tag, vr, length, value = self.header(pos)
            if tag == ITEM_END and end is None:
                return value
            if length == UNDEFINED:
                if top and tag in PIXEL_DATA_TAGS:
                    start, pos = pos, self.encapsulated(value)
                    self.pixels.element_offset = start
                    self.pixels.vr = vr.decode("ascii", "replace") if vr else None
                elif vr == b"UN":
                    # PS3.5 §6.2.2: an undefined-length UN holds a sequence in implicit VR LE.
                    explicit, self.explicit = self.explicit, False
                    pos = self.sequence(value)
                    self.explicit = explicit
                else:
                    pos = self.sequence(value)
                continue
            self.need(value, length)
            if vr == b"SQ" or (vr is None and self._implicit_sequence(tag)):
                self.items(value, value + length)
            if top and tag in PIXEL_DATA_TAGS:
                self.pixels = PixelLayout(value, length, element_offset=pos,
                                          vr=vr.decode("ascii", "replace") if vr else None)
            pos = value + length
        if end is None and pos >= self.size and not top:
            raise TruncatedFile("item without its delimiter at the end of the file")
        return pos

    @staticmethod
    def _implicit_sequence(tag: int) -> bool:
        """Implicit VR: only the data dictionary says an element is a sequence."""
        try:
            return dictionary_VR(tag) == "SQ"
        except KeyError:
            return False

    def items(self, pos: int, end: int) -> None:
        while pos < end:
            tag, _, length, value = self.header(pos)
            if tag != ITEM:
                raise TruncatedFile(f"unexpected tag {tag:08x} inside a sequence at byte {pos}")
            pos = self.dataset(value, None, False) if length == UNDEFINED else self._item(value, length)

    def _item(self, value: int, length: int) -> int:
        self.need(value, length)
        self.dataset(value, value + length, False)
        return value + length

    def sequence(self, pos: int) -> int:
        """Walk an undefined-length sequence; return the offset after its delimiter."""
        while True:
            tag, _, length, value = self.header(pos)
            if tag == SEQ_END:
                return value
            if tag != ITEM:
                raise TruncatedFile(f"unexpected tag {tag:08x} inside a sequence at byte {pos}")
            pos = self.dataset(value, None, False) if length == UNDEFINED else self._item(value, length)

    def encapsulated(self, pos: int) -> int:
        """Walk encapsulated pixel data (PS3.5 §A.4): offset table, then one item per fragment."""
        start = pos
        fragments: list[tuple[int, int]] = []
        basic: list[int] = []
        first = True
        while True:
            tag, _, length, value = self.header(pos)
            if tag == SEQ_END:
                break
            if tag != ITEM or length == UNDEFINED:
                raise TruncatedFile(f"bad encapsulated pixel data item at byte {pos}")
            self.need(value, length)
            if first:
                basic = list(struct.unpack_from(f"{self.e}{length // 4}L", self.buf, value))
                first = False
            else:
                fragments.append((value, length))
            pos = value + length
        self.pixels = PixelLayout(start, pos - start, fragments, basic, encapsulated=True, vr="OB")
        return value


def walk(buf, dataset_offset: int, explicit: bool, little: bool, trust_bytes: bool = True) -> PixelLayout | None:
    """Check the dataset starting at ``dataset_offset``; return the pixel data layout if any."""
    if trust_bytes and dataset_offset + 6 <= len(buf):
        # Some files lie about their transfer syntax; trust the bytes as pydicom does.
        vr = bytes(buf[dataset_offset + 4 : dataset_offset + 6])
        explicit = vr.isalpha() and vr.isupper()
    walker = _Walker(buf, explicit, little)
    walker.dataset(dataset_offset, len(buf), True)
    return walker.pixels


def element_end(buf, pos: int, explicit: bool, little: bool) -> tuple[int, int]:
    """(tag, offset after it) of the top-level element at ``pos``, pixel data included (encapsulated
    fragments walked to their delimiter); raises TruncatedFile when it does not fit in ``buf``."""
    walker = _Walker(buf, explicit, little)
    tag, _vr, length, value = walker.header(pos)
    if length != UNDEFINED:
        walker.need(value, length)
        return tag, value + length
    return tag, walker.encapsulated(value) if tag in PIXEL_DATA_TAGS else walker.sequence(value)


def frame_ranges(px: PixelLayout, frames: int, frame_size: int) -> list[list[tuple[int, int]]]:
    """Byte ranges of each frame: one range when native, the frame's fragments when encapsulated."""
    if not px.encapsulated:
        if frame_size <= 0:
            return []
        usable = min(frames, px.length // frame_size)
        return [[(px.offset + i * frame_size, frame_size)] for i in range(usable)]
    frags = px.fragments
    if frames <= 1:
        return [frags] if frags else []
    if len(frags) == frames:
        return [[f] for f in frags]
    if len(px.basic_offsets) == frames and frags:
        first_item = frags[0][0] - 8
        starts = [first_item + off for off in px.basic_offsets] + [frags[-1][0] + frags[-1][1] + 1]
        return [[f for f in frags if starts[i] <= f[0] - 8 < starts[i + 1]] for i in range(frames)]
    return []
