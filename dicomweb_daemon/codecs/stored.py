"""Images read through what ingest stored instead of parsing the file: the instance's DICOM JSON
(``instances.metadata``) gives the pixel module and the rendering attributes, the frame table gives
each frame's byte ranges in the file, so one frame costs one ranged read and its decoding.

The common images take this path; the rest (functional groups, palette or LUT data held as bulk
data, bit-packed or big-endian or deflated pixels, no stored JSON) are read from the parsed file
as before (:func:`.frames.open_image`).
"""
from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from functools import partial
from typing import BinaryIO

from pydicom import config, uid
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from ..dicom.transfer_syntaxes import DEFLATED, NATIVE_LE
from ..lru import LruCache
from ..storage.compression import NONE
from ..storage.reads import OpenedFile, ShortRead, StoredFile, read_ranges_at
from . import limits
from .errors import CodecError, CorruptPixelData, NoSuchFrame
from .frames import PIXEL_KEYWORDS, Image, open_image
from .render import render, render_image

#: The attributes the rendering pipeline reads (PS3.3 C.7.6.3 Image Pixel, C.11.1 Modality LUT,
#: C.11.2 VOI LUT), by tag as in DICOM JSON.
RENDER_TAGS = ("00080016", "00280002", "00280004", "00280006", "00280008", "00280010", "00280011",
               "00280100", "00280101", "00280102", "00280103", "00281050", "00281051", "00281052",
               "00281053", "00281054", "00281056", "00283000", "00283010")
#: Present in the JSON: the file must be parsed (per-frame values, colour tables, float pixels).
_NEEDS_FILE = ("52009229", "52009230", "00281201", "00281202", "00281203", "00281221", "00281222",
               "00281223", "7FE00008", "7FE00009")

#: What images are read from: the stored file (or one held open, a compressed one inflated), a
#: local path, or a file object (parsed only).
Source = StoredFile | OpenedFile | str | BinaryIO
#: Reads a frame's ``[[offset, length], ...]`` ranges of one file, joined (any thread).
RangeReader = Callable[[list], bytes]


class StoredImage(Image):
    """An :class:`Image` whose frames are read by their byte ranges in the stored file."""

    def __init__(self, ds: Dataset, transfer_syntax: str, px: dict, read: RangeReader, table: list):
        super().__init__(ds, transfer_syntax, px)
        self.read = read
        self.table = table

    def header(self) -> Dataset:
        """The pixel module for codecs, built once per image (codecs only read it)."""
        cached = getattr(self, "_header", None)
        if cached is None:
            cached = self._header = super().header()
        return cached

    def frame(self, index: int) -> bytes:
        if not 0 <= index < self.frames:
            raise NoSuchFrame(f"frame {index + 1} does not exist (the instance has {self.frames})")
        try:
            return self.read(self.table[index])
        except ShortRead:
            raise CorruptPixelData("the stored file is shorter than its frame table says") from None


def render_dataset(metadata) -> Dataset | None:
    """A small dataset of the rendering attributes from the instance's DICOM JSON (compressed bytes
    or a dict); None when the file must be parsed instead."""
    if metadata is None:
        return None
    body = json.loads(zlib.decompress(metadata)) if isinstance(metadata, (bytes, memoryview)) else metadata
    if "7FE00010" not in body or any(tag in body for tag in _NEEDS_FILE):
        return None
    picked = {tag: body[tag] for tag in RENDER_TAGS if tag in body}
    if _has_bulk(picked):
        return None  # LUT data kept as bulk data: only the file has it
    try:
        ds = _simple_dataset(picked) or Dataset.from_json(picked)
    except Exception:  # noqa: BLE001 - a value the JSON holds but pydicom cannot read back
        return None
    ds.PixelData = b""  # a header: the pixels are read through the frame table
    return ds


#: VRs whose DICOM JSON values are plain numbers or strings (PS3.18 §F.2.3).
_SIMPLE_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "DS", "IS", "CS", "LO", "SH", "UI", "LT", "ST"}


def _simple_dataset(picked: dict) -> Dataset | None:
    """The dataset of plain-valued elements built directly (pydicom's ``from_json`` costs ten times
    more); None when an element has a sequence, an empty value or another VR."""
    elements = {}
    for tag, attr in picked.items():
        vr, values = attr.get("vr"), attr.get("Value")
        if vr not in _SIMPLE_VRS or not values or any(v is None or isinstance(v, dict) for v in values):
            return None
        # Values from our own JSON were validated when the file was read: not again.
        elem = DataElement(int(tag, 16), vr, values[0] if len(values) == 1 else values,
                           validation_mode=config.IGNORE)
        elements[elem.tag] = elem
    return Dataset(elements)


def _has_bulk(node) -> bool:
    if isinstance(node, dict):
        return "BulkDataURI" in node or any(_has_bulk(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_bulk(v) for v in node)
    return False


_UNKNOWN = object()  # (a header known to be None: the file must be parsed)


class HeaderCache:
    """Headers parsed from the stored JSON, by stored file (its storage UUID names one content for
    ever), so that a series scrolled through parses each instance's JSON once. Bounded, most
    recently used last; shared by the cpu threads."""

    def __init__(self, size: int = 2048):
        self._items = LruCache(size)

    def get(self, key: str, metadata) -> tuple[Dataset, dict, Dataset] | None:
        """The header of ``key``, parsed from ``metadata`` when it is not known yet. Without
        ``metadata`` (an instance described without its JSON) nothing is learnt, and nothing kept:
        a later call that has the JSON must still parse it."""
        found = self._items.get(key, _UNKNOWN)
        if found is not _UNKNOWN:
            return found
        if metadata is None:
            return None
        return self._items.put(key, _header(metadata))


def _header(metadata) -> tuple[Dataset, dict, Dataset] | None:
    """``(dataset, pixel module, codec header)`` of the JSON, or None when the file must be parsed.
    The dataset is shared: the rendering pipeline only reads it."""
    ds = render_dataset(metadata)
    if ds is None:
        return None
    try:
        return ds, limits.pixel_module(ds), _pixel_header(ds)
    except CodecError:
        return None  # the parsed file says what is wrong with it


_PIXEL_TAGS = [Tag(keyword) for keyword in PIXEL_KEYWORDS]


def _pixel_header(ds: Dataset) -> Dataset:
    """:func:`.frames.pixel_header` sharing the elements of ``ds`` (both are read-only)."""
    return Dataset({tag: ds[tag] for tag in _PIXEL_TAGS if tag in ds})


def stored_image(source: Source | None, table: list | None, transfer_syntax: str, metadata,
                 key: str | None = None, headers: HeaderCache | None = None) -> StoredImage | None:
    """The instance as a :class:`StoredImage`, or None when it must be read from the parsed file.

    ``headers`` keeps the header parsed from ``metadata`` under ``key`` (the stored file's UUID)."""
    read = _range_reader(source)
    if read is None or not table:
        return None
    ts = uid.UID(transfer_syntax)
    if ts not in NATIVE_LE and not (ts.is_compressed and ts != DEFLATED):
        return None
    header = headers.get(key, metadata) if headers is not None and key is not None else _header(metadata)
    if header is None:
        return None
    ds, px, pixels = header
    if px["bits_allocated"] == 1 or px["photometric"] == "PALETTE COLOR" or len(table) != px["frames"]:
        return None
    if not ts.is_compressed and any(len(ranges) != 1 for ranges in table):
        return None
    image = StoredImage(ds, str(ts), px, read, table)
    image._header = pixels
    return image


def _range_reader(source: Source | None) -> RangeReader | None:
    """How to read byte ranges of ``source``; None for a file object (it is parsed instead)."""
    if isinstance(source, OpenedFile):
        return source.read_ranges
    if isinstance(source, StoredFile):
        return source.read_ranges if source.compression == NONE else _InflatedOnce(source)
    if isinstance(source, str):
        return partial(read_ranges_at, source)
    return None


class _InflatedOnce:
    """Ranges of a compressed stored file: it has no bytes to read in place, so it is opened (read
    and inflated) at the first read and kept for the image's life, one cpu job: the frames of an
    animation or an export cost one inflation, not one each. No descriptor is held (nothing to close)."""

    __slots__ = ("file", "opened")

    def __init__(self, file: StoredFile):
        self.file = file
        self.opened: OpenedFile | None = None

    def __call__(self, ranges: list) -> bytes:
        if self.opened is None:
            self.opened = self.file.open()
        return self.opened.read_ranges(ranges)


def parse_source(source: Source):
    """What pydicom parses for ``source``: a path, or a file object (a stored file's whole bytes when
    its storage has no local files)."""
    return source.source() if isinstance(source, (StoredFile, OpenedFile)) else source


def image_of(source: Source, table: list | None, transfer_syntax: str, metadata, key: str | None = None,
             headers: HeaderCache | None = None) -> Image:
    """The instance's image: through its frame table and DICOM JSON when they suffice, else parsed."""
    image = stored_image(source, table, transfer_syntax, metadata, key, headers)
    return image if image is not None else open_image(parse_source(source))


def render_stored(source: Source, table: list | None, transfer_syntax: str, metadata, frame: int = 1,
                  key: str | None = None, headers: HeaderCache | None = None, **options) -> bytes:
    """:func:`.render.render` of one instance, through its frame table and DICOM JSON when they
    suffice (one ranged read, no parsing), else through the parsed file. ``headers`` and ``key``
    (the stored file's UUID) reuse the header parsed from the JSON."""
    image = stored_image(source, table, transfer_syntax, metadata, key, headers)
    if image is None:
        return render(parse_source(source), frame, **options)
    return render_image(image, frame, **options)
