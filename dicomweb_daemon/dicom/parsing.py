"""Parse a DICOM file once at ingest and extract everything the index and later reads need."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import UID

from ..errors import BadFileFormat, MissingIdentifier
from .fast_json import Header, Unsupported, read_header
from .identifiers import is_storable_uid, resource_ids
from .layout import TruncatedFile, frame_ranges, walk
from .pixel_vr import file_pixel_vr, unexpected_pixel_vr
from .stored_json import qido_extras
from .tags import MAIN_TAGS
from .transfer_syntaxes import IMPLICIT_LE, syntax_of_encoding

ROOT_TOKEN = "%%DICOMWEB_ROOT%%"
BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
REQUIRED = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
# Where a series announces how many instances it holds, the first one present deciding (a 0 there
# means that it does not say): Orthanc's series completion.
EXPECTED_COUNT_TAGS = ("CardiacNumberOfImages", "ImagesInAcquisition", "NumberOfSlices", "NumberOfTimeSlices")


@dataclass
class ParsedInstance:
    """What ingest learns from one file; nothing here needs the file again."""

    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax: str
    ids: tuple[str, str, str, str]
    main_tags: dict[str, dict[str, str]]
    size: int
    md5: str
    metadata_json: bytes
    # The same, zlib-compressed as the index stores it: done here, in the parsing worker process,
    # rather than in the index's single writer thread.
    metadata_zlib: bytes = b""
    # Its QIDO_EXTRAS (stored_json.py), kept apart by the index: also done in the parsing worker.
    qido_extras: bytes = b""
    frames: list = field(default_factory=list)
    index_in_series: int | None = None
    expected_instances: int | None = None
    number_of_frames: int = 0
    charset: str = ""
    pixel_data_offset: int | None = None
    # The VR of native pixel data as written in the file, when that is not the one the standard gives
    # (OW for 8-bit pixels, say): Orthanc's PixelDataVR metadata.
    pixel_data_vr: str | None = None


def element_text(elem: DataElement) -> str:
    """The value of ``elem`` as the text Orthanc shows (multiple values joined by backslash)."""
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1", "replace")
    if isinstance(value, (list, MultiValue)):
        return "\\".join("" if v is None else str(v) for v in value)
    return str(value)


_MAIN_TAG_NUMBERS = {level: [(kw, tag_for_keyword(kw)) for kw in kws] for level, kws in MAIN_TAGS.items()}
_NUMBER_KEYWORDS = ("NumberOfFrames", "BitsAllocated", "Rows", "Columns", "SamplesPerPixel", "InstanceNumber",
                    "ImageIndex", "PixelRepresentation", "NumberOfTemporalPositions", *EXPECTED_COUNT_TAGS)
_TEXT_KEYWORDS = (*REQUIRED, "PatientID", "SOPClassUID", "SpecificCharacterSet")
# What the fast reader keeps the text or values of, besides the DICOM JSON.
WANTED_TAGS = frozenset([tag for tags in _MAIN_TAG_NUMBERS.values() for _, tag in tags] +
                        [tag_for_keyword(kw) for kw in _NUMBER_KEYWORDS + _TEXT_KEYWORDS])


class _Fields:
    """The few attributes ingest reads, from a pydicom dataset or from the fast reader's header."""

    def text(self, keyword: str) -> str | None:
        """The element's text as Orthanc shows it, None when absent (or a sequence)."""
        raise NotImplementedError

    def number(self, keyword: str) -> int | None:
        """The element's single value as an integer, None when absent, empty, multiple or not a number."""
        raise NotImplementedError

    def main_tags(self) -> dict[str, dict[str, str]]:
        """The main tags present, per level (looked up by tag number: this runs per ingest)."""
        out: dict[str, dict[str, str]] = {}
        for level, tags in _MAIN_TAG_NUMBERS.items():
            found = {}
            for kw, _ in tags:
                text = self.text(kw)
                if text is not None:
                    found[kw] = text.strip("\x00 ")
            out[level] = found
        return out


class _DatasetFields(_Fields):
    def __init__(self, ds: Dataset):
        self.ds = ds

    def text(self, keyword: str) -> str | None:
        tag = tag_for_keyword(keyword)
        if tag not in self.ds:
            return None
        elem = self.ds[tag]
        return None if elem.VR == "SQ" else element_text(elem)

    def number(self, keyword: str) -> int | None:
        try:
            value = self.ds.get(keyword)
            return int(value) if value not in (None, "") else None
        except (TypeError, ValueError):
            return None


class _HeaderFields(_Fields):
    def __init__(self, header: Header):
        self.header = header

    def text(self, keyword: str) -> str | None:
        return self.header.texts.get(tag_for_keyword(keyword))

    def number(self, keyword: str) -> int | None:
        values = self.header.values.get(tag_for_keyword(keyword))
        if not values or len(values) != 1:
            return None
        try:
            return int(values[0])
        except (TypeError, ValueError):
            return None


def _bulk_paths(node: Any, path: str) -> None:
    """Replace the bulk-data sentinels left by pydicom with URIs naming the element's path."""
    for tag, attr in node.items():
        here = f"{path}/{tag.lower()}"
        if attr.get("BulkDataURI") == "":
            attr["BulkDataURI"] = here
        for i, item in enumerate(attr.get("Value", ()) if attr.get("vr") == "SQ" else ()):
            if isinstance(item, dict):
                _bulk_paths(item, f"{here}/{i + 1}")


def dicom_json(ds: Dataset, instance_url: str, pixel_vr: str | None) -> bytes:
    """DICOM JSON (PS3.18 §F.2) with BulkDataURI for binary values and pixel data."""
    try:
        body = ds.to_json_dict(bulk_data_threshold=0, bulk_data_element_handler=lambda _elem: "")
    except Exception:  # a value pydicom cannot encode: skip it rather than refuse the file
        body = {}
        for elem in ds:
            try:
                body.update(Dataset({elem.tag: elem}).to_json_dict(0, lambda _e: ""))
            except Exception:
                continue
    return _json_bytes(body, instance_url, pixel_vr)


def _json_bytes(body: dict, instance_url: str, pixel_vr: str | None) -> bytes:
    """The stored DICOM JSON: bulk data sentinels replaced by URIs, pixel data's URI added."""
    _bulk_paths(body, f"{ROOT_TOKEN}{instance_url}/bulk")
    charset = body.get("00080005")
    if charset and charset.get("Value"):
        # "\ISO 2022 IR 149" (default repertoire first) reads as ["ISO 2022 IR 149"], as Orthanc
        # reports it: an empty value names no character set.
        named = [v for v in charset["Value"] if v]
        if named:
            charset["Value"] = named
        else:
            del charset["Value"]
    if pixel_vr:
        body["7FE00010"] = {"vr": pixel_vr, "BulkDataURI": f"{ROOT_TOKEN}{instance_url}/bulk/7fe00010"}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse_buffer(data, default_charset: str = "ISO_IR 100") -> ParsedInstance:
    """Parse and validate a DICOM file held in a buffer (bytes, a mapped file...); raise
    BadFileFormat saying what is wrong. Nothing here reads a file: the caller has the bytes.

    ``default_charset`` decodes text of files without SpecificCharacterSet (Orthanc's DefaultEncoding).
    Common files are read by the fast reader (fast_json.py); the others by pydicom."""
    if len(data) > 132:
        try:
            return _parse_fast(data, len(data), default_charset)
        except TruncatedFile as e:
            raise BadFileFormat("Bad file format", f"truncated DICOM file: {e}") from None
        except BadFileFormat:
            raise
        except Exception:  # noqa: BLE001 - Unsupported, or a surprise: pydicom decides
            pass
    return _parse_with_pydicom(io.BytesIO(data), default_charset)


def _parse_fast(buf, size: int, default_charset: str) -> ParsedInstance:
    """Explicit or implicit VR little endian files with a standard file meta group; raise Unsupported else."""
    if buf[128:132] != b"DICM" or buf[132:140] != b"\x02\x00\x00\x00UL\x04\x00":
        raise Unsupported("no standard file meta information")
    dataset_offset = 144 + int.from_bytes(buf[140:144], "little")
    meta = read_header(buf, 132, False, "ISO_IR 6", frozenset(), dataset_offset).body if dataset_offset <= size else {}
    ts = UID((meta.get("00020010", {}).get("Value") or [""])[0])
    if not ts.is_transfer_syntax or ts.is_deflated or not ts.is_little_endian or dataset_offset + 6 > size:
        raise Unsupported("transfer syntax")
    vr = buf[dataset_offset + 4 : dataset_offset + 6]
    if (vr.isalpha() and vr.isupper()) == ts.is_implicit_VR:
        raise Unsupported("the dataset's encoding is not its transfer syntax's")
    header = read_header(buf, dataset_offset, ts.is_implicit_VR, default_charset, WANTED_TAGS)
    pixels = None
    if header.pixel_pos is not None:
        try:
            pixels = walk(buf, header.pixel_pos, not ts.is_implicit_VR, True, trust_bytes=False)
        except TruncatedFile:
            raise
        except Exception as e:
            raise BadFileFormat("Bad file format", f"malformed DICOM file: {e}") from None
    return _describe(_HeaderFields(header), str(ts), size, hashlib.md5(buf).hexdigest(), pixels,
                     lambda url, pixel_vr: _json_bytes(header.body, url, pixel_vr))


def _parse_with_pydicom(f, default_charset: str) -> ParsedInstance:
    """Any file pydicom reads (big endian, deflated, ISO 2022 text, odd VRs, ...)."""
    # A bare dataset without preamble nor file meta information (PS3.10 §7.1) is read too, its
    # encoding guessed from its first element, as Orthanc (DCMTK) does; it is stored as it came.
    bare = f.getbuffer()[128:132] != b"DICM"
    try:
        ds = pydicom.dcmread(f, stop_before_pixels=True, force=bare)
    except (InvalidDicomError, EOFError) as e:
        raise BadFileFormat("Bad file format", f"not a DICOM file: {e}") from None
    except Exception as e:
        raise BadFileFormat("Bad file format", f"unreadable DICOM file: {e}") from None
    meta = ds.file_meta
    if bare:
        ts = UID(syntax_of_encoding(*ds.original_encoding))
        dataset_offset = 0
    else:
        ts = UID(str(meta.get("TransferSyntaxUID", IMPLICIT_LE)))
        dataset_offset = _dataset_offset(f, meta)
    size = f.seek(0, 2)
    with _whole(f) as buf:
        md5 = hashlib.md5(buf).hexdigest()
        try:
            pixels = None if ts.is_deflated else walk(buf, dataset_offset, ts.is_implicit_VR is False,
                                                      ts.is_little_endian)
        except TruncatedFile as e:
            raise BadFileFormat("Bad file format", f"truncated DICOM file: {e}") from None
        except Exception as e:
            raise BadFileFormat("Bad file format", f"malformed DICOM file: {e}") from None
    if "SpecificCharacterSet" not in ds and default_charset != "ISO_IR 6":
        ds.SpecificCharacterSet = default_charset
        try:
            ds.decode()
        except (LookupError, ValueError):
            pass
        del ds.SpecificCharacterSet
    parsed = _describe(_DatasetFields(ds), str(ts), size, md5, pixels,
                       lambda url, pixel_vr: dicom_json(ds, url, pixel_vr))
    if bare:
        parsed.pixel_data_offset = None  # Orthanc finds no PixelDataOffset in a file without preamble
    return parsed


def _whole(f: io.BytesIO):
    """The whole content of ``f`` as a buffer, without a copy."""
    return contextlib.nullcontext(f.getbuffer())


def _dataset_offset(f, meta) -> int:
    """Offset of the first dataset element, right after the file meta information."""
    f.seek(128 + 4)
    hdr = f.read(12)
    if len(hdr) == 12 and hdr[:4] == b"\x02\x00\x00\x00":  # (0002,0000) group length, explicit VR
        group_length = int.from_bytes(hdr[8:12], "little")
        return 128 + 4 + 12 + group_length
    # Without a group length, walk the group 2 elements.
    from pydicom.filereader import _read_file_meta_info, read_preamble  # noqa: PLC0415

    f.seek(0)
    read_preamble(f, False)
    _read_file_meta_info(f)
    return f.tell()


def _describe(fields: _Fields, ts: str, size: int, md5: str, pixels, metadata) -> ParsedInstance:
    """The ParsedInstance of a read file; ``metadata(url, pixel_vr)`` makes its DICOM JSON."""
    uids = []
    for kw in REQUIRED:
        value = (fields.text(kw) or "").strip("\x00 ")
        if not value:
            raise MissingIdentifier("Bad file format", f"the DICOM file has no {kw}",
                                    (fields.text("SOPClassUID") or "").strip("\x00 "),
                                    (fields.text("SOPInstanceUID") or "").strip("\x00 "))
        if not is_storable_uid(value):
            raise BadFileFormat("Bad file format", f"the DICOM file has an invalid {kw}: {value!r}")
        uids.append(value)
    study, series, sop = uids
    patient_id = (fields.text("PatientID") or "").strip("\x00 ")
    ids = resource_ids(patient_id, study, series, sop)
    frames_n = fields.number("NumberOfFrames") or 1
    frames: list = []
    pixel_vr = None
    if pixels is not None:
        bits = fields.number("BitsAllocated") or 8
        # The file's own VR when it gives one (Orthanc 1.12.1 keeps an 8-bit OW as OW: PixelDataVR).
        pixel_vr = file_pixel_vr(pixels.vr, pixels.encapsulated, bits)
        rows, cols = fields.number("Rows") or 0, fields.number("Columns") or 0
        samples = fields.number("SamplesPerPixel") or 1
        frame_size = (rows * cols * samples * bits + 7) // 8
        frames = frame_ranges(pixels, frames_n, frame_size)
    url = f"/studies/{study}/series/{series}/instances/{sop}"
    metadata_json = metadata(url, pixel_vr)
    announced = next(((k, v) for k in EXPECTED_COUNT_TAGS if (v := fields.number(k)) is not None), None)
    expected = announced[1] or None if announced else None
    positions = fields.number("NumberOfTemporalPositions")
    if expected and announced[0] == "ImagesInAcquisition" and positions and positions > 1:
        # An acquisition of several temporal positions holds its images once per position (C.7.6.1).
        expected *= positions
    index = fields.number("InstanceNumber")
    if index is None:
        index = fields.number("ImageIndex")
    return ParsedInstance(
        patient_id=patient_id, study_uid=study, series_uid=series, sop_uid=sop,
        sop_class_uid=fields.text("SOPClassUID") or "", transfer_syntax=ts, ids=ids,
        main_tags=fields.main_tags(), size=size, md5=md5, metadata_json=metadata_json,
        metadata_zlib=zlib.compress(metadata_json, 1), qido_extras=qido_extras(metadata_json),
        frames=frames, index_in_series=index, expected_instances=expected,
        number_of_frames=frames_n if pixels is not None else 0,
        pixel_data_offset=pixels.element_offset if pixels is not None else None,
        pixel_data_vr=unexpected_pixel_vr(pixels, fields.number("BitsAllocated") or 8),
        charset=fields.text("SpecificCharacterSet") or "",
    )
