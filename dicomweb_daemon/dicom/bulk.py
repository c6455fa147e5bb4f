"""The raw value at a BulkDataURI path of a stored file (PS3.18 §8.7.3.5.4 bulk data), little endian."""
from __future__ import annotations

import io

import pydicom
from pydicom.dataelem import RawDataElement

from ..errors import UnknownResource
from .reencode import SWAP_WIDTH, swap_bytes
from .transfer_syntaxes import BIG_ENDIAN


def bulk_value(data: bytes, segments: list[str]) -> bytes:
    """The raw value at a BulkDataURI path ``tag[/item/tag...]`` of a file (cpu): the bytes of
    any element but a sequence, text as stored (Orthanc serves every element this way)."""
    # Elements before the pixel data need no pixel data read (most bulk values); trailing ones
    # such as (FFFC,FFFC) padding do.
    before_pixels = int(segments[0], 16) < 0x7FE00010
    ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=before_pixels)
    node = ds
    for i in range(0, len(segments), 2):
        tag = int(segments[i], 16)
        if tag not in node:
            raise UnknownResource("Unknown resource", f"no element {segments[i]} at this path")
        raw = node.get_item(tag)  # before node[tag] converts it: a text value's bytes as stored
        elem = node[tag]
        if i + 1 == len(segments):
            value = raw.value if isinstance(raw, RawDataElement) and elem.VR != "SQ" else elem.value
            if isinstance(value, bytes):
                if str(ds.file_meta.get("TransferSyntaxUID", "")) == BIG_ENDIAN and elem.VR in SWAP_WIDTH:
                    return swap_bytes(value, SWAP_WIDTH[elem.VR])  # DICOMweb bulk data is little endian
                return value
            raise UnknownResource("Unknown resource", f"element {segments[i]} is not bulk data")
        index = int(segments[i + 1])
        if elem.VR != "SQ" or not 1 <= index <= len(elem.value):
            raise UnknownResource("Unknown resource", f"no item {index} in {segments[i]}")
        node = elem.value[index - 1]
    raise UnknownResource("Unknown resource", "a bulk data path ends with a tag")
