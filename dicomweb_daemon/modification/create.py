"""Orthanc's ``POST /tools/create-dicom``: a JSON body turned into new DICOM files (Orthanc book, "Creating
DICOM" and the ``/tools/create-dicom`` entry of its OpenAPI file). Pure functions for cpu threads; the
route (``web/rest/create_dicom.py``) finds the parent and stores the files through the ingest pipeline.

The body is ``{"Tags": {...}, "Content": ..., "Parent", "PrivateCreator", "Force",
"InterpretBinaryTags", "Encapsulate"}``, or, as Orthanc still accepts, an object whose members are all
tags (``{"PatientName": ..., "PixelData": "data:image/png;base64,..."}``). Tags and their values are
those of ``/modify``'s ``Replace`` (``modification/request.py`` parses them, ``values.convert`` casts
them): keywords or numbers, strings, arrays of objects for sequences, ``data:`` URIs for binary values.
Only top-level tags are named: a sequence is given whole. ``Content`` is one data URI
(``create_content.py``), or an array of them (or of ``{"Content", "Tags"}``) for a series, one
instance each.

What the new instance gets, each step overriding the one before (observed on Orthanc 1.10.1):
new UIDs, a random PatientID, today's dates and times, the default character set, and the Modality of
a document or a model; the Patient (and General Study, and General Series) Module of an instance of the
``Parent`` patient (study, series), with its Specific Character Set; the request's tags; the
attributes of the content (pixel module, document, SOP class); Secondary Capture as SOP class for an
image that names none (Orthanc leaves it out; PS3.4 B.5). A tag of a module inherited from the parent
is refused (Orthanc: "Trying to override a value inherited from a parent module"), and so are the
Study, Series and SOP Instance UIDs unless ``Force``. Private tags are written where the request puts
them, their creator element only if the request gives it (see ``_Elements``).

Character sets: the request's ``SpecificCharacterSet`` encodes its text, and text it cannot encode is a
400 (Orthanc 1.10.1 silently empties it); without one, the default encoding's, switched to UTF-8
(ISO_IR 192, PS3.5 §6.1.2.3) when the text needs it. With a ``Parent``, the parent's character set
decides, as in Orthanc (a ``SpecificCharacterSet`` in ``Tags`` is then ignored: test_create_pdf).
"""
from __future__ import annotations

import datetime
import io
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydicom import config, dcmread
from pydicom.charset import convert_encodings, python_encoding
from pydicom.datadict import private_dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ..dicom.modules import MODULES
from ..dicom.private_dictionary import TagDictionary
from ..errors import BadRequest
from .apply import TEXT_VRS
from .create_content import Payload, content_elements, default_modality, measurement_units_mm, parse_payload
from .paths import bad, parse_tag, tag_name
from .request import PATIENT_ID, SERIES_UID, SOP_UID, STUDY_UID, Item, Replacement, parse_modification
from .values import BYTES_VRS, convert, decode_data_uri, encodes

CHARSET, PIXEL_DATA = 0x00080005, 0x7FE00010
UTF8 = "ISO_IR 192"
GENERIC_FILE_CLASS = "1.2.276.0.7230010.3.1.0.1"
NEEDS_FORCE = (STUDY_UID, SERIES_UID, SOP_UID)  # OpenAPI, "Force"
INHERITED = {"Patient": ("Patient",), "Study": ("Patient", "Study"), "Series": ("Patient", "Study", "Series")}
NOW_TAGS = ("InstanceCreation", "Study", "Series", "Acquisition", "Content")  # <x>Date and <x>Time
OPTIONS = ("Tags", "Content", "Parent", "PrivateCreator", "Force", "InterpretBinaryTags", "Encapsulate")


@dataclass(frozen=True)
class Part:
    """One instance to create: its own tags (after the request's) and its content."""

    tags: tuple[Replacement, ...]
    payload: Payload | None


@dataclass(frozen=True)
class Creation:
    """A parsed request. ``series``: ``Content`` was an array, so the answer names the series."""

    tags: tuple[Replacement, ...]
    parts: tuple[Part, ...]
    series: bool = False
    parent: str | None = None
    force: bool = False
    interpret_binary: bool = True
    encapsulate: bool = False
    dictionary: TagDictionary | None = field(default=None, compare=False)  # VRs of private tags


@dataclass(frozen=True)
class Parent:
    """The resource to attach to: its level and the file of one of its instances."""

    level: str
    data: bytes


def parse_creation(raw: bytes | str | Any, dictionary: TagDictionary | None = None,
                   default_creator: str | None = None) -> Creation:
    """(cpu thread) The ``Creation`` of a request body; a 400 naming the problem for a bad one."""
    body = _json(raw)
    if "Tags" in body:
        tags = body["Tags"]
        if not isinstance(tags, dict):
            raise bad('"Tags" must be an object associating tags with values')
        options = body
    else:  # Orthanc's first form: every member is a tag
        tags, options = body, {}
        for key, value in tags.items():
            if not isinstance(value, str):
                raise bad(f"{key}: only string values are accepted when the body is made of tags only "
                          '(put them in "Tags" for sequences and null values)')
    parent = _option(options, "Parent", str)
    creator = _option(options, "PrivateCreator", str) or default_creator
    force = _option(options, "Force", bool) or False
    interpret = _option(options, "InterpretBinaryTags", bool)
    tags = dict(tags)
    content = options.get("Content")
    pixel_key = next((k for k in tags if _is_pixel_data(k)), None)
    if pixel_key is not None:  # test_create: the image given as the value of PixelData
        if content is not None:
            raise bad(f'{pixel_key} and "Content" both give the content: keep one')
        content = tags.pop(pixel_key)
    common = _tags(tags, "Tags", dictionary, creator, force)
    if isinstance(content, list) and content:
        parts = tuple(_part(item, f"Content[{i}]", dictionary, creator, force) for i, item in enumerate(content))
        series = True
    else:  # an empty array makes one instance without content, as in Orthanc 1.10.1
        parts = (Part((), parse_payload(content, "Content") if content not in (None, []) else None),)
        series = False
    return Creation(common, parts, series, parent, force, True if interpret is None else interpret,
                    _option(options, "Encapsulate", bool) or False, dictionary)


def _json(raw: Any) -> dict:
    if isinstance(raw, bytes | str):
        try:
            raw = json.loads(raw) if raw.strip() else None
        except (ValueError, UnicodeDecodeError) as e:
            raise bad(f"the body is not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise bad("the body must be a JSON object: {\"Tags\": {...}, \"Content\": \"data:...\", ...}")
    return raw


def _option(body: dict, key: str, kind: type) -> Any:
    value = body.get(key)
    if value is not None and (not isinstance(value, kind) or (kind is str and not value)):
        raise bad(f'"{key}" must be a {"Boolean" if kind is bool else "non-empty string"}, not {value!r}')
    return value


def _is_pixel_data(key: str) -> bool:
    try:
        return parse_tag(key)[0] == PIXEL_DATA
    except BadRequest:  # an unknown tag is reported when the tags are parsed
        return False


def _tags(tags: dict, where: str, dictionary, creator: str | None, force: bool) -> tuple[Replacement, ...]:
    # Force: parse_modification's identifier checks are /modify's; create-dicom has its own below.
    parsed = parse_modification({"Replace": tags, "Force": True, "PrivateCreator": creator}, "Instance",
                                anonymize=False, dictionary=dictionary).replace
    for r in parsed:
        if not r.path.top_level:
            raise bad(f"{where}: {r.path} is a path into a sequence: give the sequence whole, as an array "
                      "of objects")
        if r.path.tag in NEEDS_FORCE and not force:
            raise bad(f'{where}: setting {tag_name(r.path.tag)} requires "Force": true (the new instance '
                      "would otherwise join whatever study or series has this UID)")
    return parsed


def _part(item: Any, where: str, dictionary, creator: str | None, force: bool) -> Part:
    if isinstance(item, str):
        return Part((), parse_payload(item, where))
    if not isinstance(item, dict) or "Content" not in item:
        raise bad(f'{where}: an item of "Content" is a data URI or an object {{"Content": ..., "Tags": {{...}}}}')
    tags = item.get("Tags", {})
    if not isinstance(tags, dict):
        raise bad(f'{where}.Tags must be an object associating tags with values')
    return Part(_tags(tags, f"{where}.Tags", dictionary, creator, force), parse_payload(item["Content"], where))


def build_files(creation: Creation, parent: Parent | None, default_charset: str) -> list[bytes]:
    """(cpu thread) The new DICOM files, one per part, sharing the patient, study and series."""
    inherited, levels = (_inherited(parent, default_charset), INHERITED[parent.level]) if parent is not None \
        else (Dataset(), ())
    banned = frozenset().union(*(MODULES[level] for level in levels))
    now = datetime.datetime.now()
    shared = {PATIENT_ID: str(uuid.uuid4()), STUDY_UID: generate_uid(prefix=None),
              SERIES_UID: generate_uid(prefix=None), "frame": generate_uid(prefix=None)}
    files = []
    for index, part in enumerate(creation.parts):
        where = f"Content[{index}]" if creation.series else "Tags"
        for r in creation.tags + part.tags:
            if r.path.tag in banned:
                raise bad(f"{where}: {r.path} comes from the parent {parent.level.lower()} {creation.parent}: "
                          "it cannot be set (trying to override a value inherited from a parent module)")
        ds = Dataset()
        _defaults(ds, now, shared, default_modality(part.payload))
        for elem in inherited:
            ds[elem.tag] = elem
        elements = _Elements(creation.dictionary, creation.interpret_binary)
        for r in creation.tags + part.tags:  # a part's tag wins over the request's
            if r.path.tag == CHARSET and parent is not None:
                continue  # the parent's character set decides (its text is in it)
            ds[r.path.tag] = elements.element(r.path.tag, r.vr, r.value, r.creator, str(r.path))
        syntax = None
        if part.payload is not None:
            content, syntax = content_elements(part.payload, creation.encapsulate, where)
            for elem in content:
                ds[elem.tag] = elem
            if part.payload.mime in ("model/stl", "model/obj"):
                ds.setdefault("FrameOfReferenceUID", shared["frame"])
                ds.setdefault(0x004008EA, measurement_units_mm())
            if "PixelData" in ds and "SOPClassUID" not in ds:
                ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
        if creation.series:
            ds.setdefault("InstanceNumber", str(index + 1))
            ds.setdefault("ImagesInAcquisition", str(len(creation.parts)))
        explicit = parent is None and any(r.path.tag == CHARSET for r in creation.tags + part.tags)
        _fit_charset(ds, elements.texts, default_charset, explicit)
        files.append(_write(ds, syntax or ExplicitVRLittleEndian))
    return files


def _defaults(ds: Dataset, now: datetime.datetime, shared: dict, modality: str | None) -> None:
    for prefix in NOW_TAGS:
        setattr(ds, f"{prefix}Date", now.strftime("%Y%m%d"))
        setattr(ds, f"{prefix}Time", now.strftime("%H%M%S.%f"))
    ds.PatientID = shared[PATIENT_ID]
    ds.StudyInstanceUID = shared[STUDY_UID]
    ds.SeriesInstanceUID = shared[SERIES_UID]
    ds.SOPInstanceUID = generate_uid(prefix=None)
    if modality:
        ds.Modality = modality


def _inherited(parent: Parent, default_charset: str) -> Dataset:
    """The parent's modules (and character set), read from one of its instances, text decoded."""
    source = dcmread(io.BytesIO(parent.data), force=True, stop_before_pixels=True)
    if CHARSET not in source:  # the daemon's DefaultEncoding reads such files (Orthanc book)
        source.SpecificCharacterSet = default_charset
    tags = frozenset().union(*(MODULES[level] for level in INHERITED[parent.level]), {CHARSET})
    out = Dataset()
    for _elem in source.iterall():
        pass  # converting each raw element decodes its text with the parent's character set
    for tag in sorted(tags):
        if tag in source:
            out[tag] = source[tag]
    return out


class _Elements:
    """Elements built from the request's values (``values.convert``), their text collected for the
    character set. A private element goes where the request puts it: as in Orthanc, ``PrivateCreator``
    gives its VR through the dictionaries, and the creator element is written only if the request
    names it (Orthanc book: "the xxxx,0010 tag must be defined"; test_anonymize_nested)."""

    def __init__(self, dictionary: TagDictionary | None, interpret_binary: bool):
        self.dictionary = dictionary
        self.interpret_binary = interpret_binary
        self.texts: list[str] = []

    def vr(self, tag: int, vr: str | None, value: Any, creator: str | None, where: str) -> str:
        if vr:
            alternatives = vr.split(" or ")
            for alternative in alternatives[:-1]:  # "US or SS": the first the value casts to
                try:
                    convert(value, alternative, tag, where)
                    return alternative
                except BadRequest:
                    pass
            return alternatives[-1]
        if isinstance(value, tuple):
            return "SQ"
        if creator is not None:
            entry = self.dictionary.lookup(tag, creator) if self.dictionary is not None else None
            if entry is not None:
                return entry.vr
            try:
                return private_dictionary_VR(tag, creator).split(" or ")[0]
            except KeyError:
                pass
        return "UN"

    def element(self, tag: int, vr: str | None, value: Any, creator: str | None, where: str) -> DataElement:
        vr = self.vr(tag, vr, value, creator, where)
        if vr == "SQ":
            if not isinstance(value, tuple):
                raise bad(f"{where}: {tag_name(tag)} is a sequence: give an array of objects")
            items = [self.item(item, f"{where}[{i}]") for i, item in enumerate(value)]
            return DataElement(tag, vr, Sequence(items), validation_mode=config.IGNORE)
        if isinstance(value, tuple):
            raise bad(f"{where}: {tag_name(tag)} is not a sequence ({vr})")
        literal = isinstance(value, str) and decode_data_uri(value, where) is not None and \
            (not self.interpret_binary or vr not in BYTES_VRS)
        if literal and vr in BYTES_VRS:  # InterpretBinaryTags false: the URI itself is the value
            raw = value.encode("utf-8")
            converted: Any = raw + b"\0" if len(raw) % 2 else raw
        elif literal:
            converted = value  # a text attribute keeps a data URI as text (observed on Orthanc 1.10.1)
        else:
            converted = convert(value, vr, tag, where)
        if vr in TEXT_VRS and converted is not None:
            self.texts.extend(str(v) for v in (converted if isinstance(converted, list | MultiValue) else [converted]))
        return DataElement(tag, vr, converted, validation_mode=config.IGNORE)

    def item(self, item: Item, where: str) -> Dataset:
        ds = Dataset()
        for tag, vr, value, creator in item.fields:
            ds[tag] = self.element(tag, vr, value, creator, f"{where}.{tag_name(tag)}")
        return ds


def _fit_charset(ds: Dataset, texts: list[str], default: str, explicit: bool) -> None:
    """The Specific Character Set of the new instance, checked against the text the request wrote."""
    given = ds.get(CHARSET)
    terms = ([str(v) for v in given.value] if isinstance(given.value, MultiValue) else [str(given.value)]) \
        if given is not None and given.value else [default]
    unknown = [t for t in terms if t.strip() not in python_encoding]
    if unknown:
        raise bad(f"SpecificCharacterSet: unknown character set {unknown[0]!r} (PS3.3 C.12.1.1.2)")
    if given is None:
        ds.SpecificCharacterSet = default if len(terms) == 1 else terms
    codecs = convert_encodings([t.strip() for t in terms])
    for text in texts:
        if not any(encodes(text, codec) for codec in codecs):
            if explicit:
                named = "\\".join(terms)
                raise bad(f"{text!r} cannot be written in SpecificCharacterSet {named}: use ISO_IR 192 (UTF-8) "
                          "or leave SpecificCharacterSet out")
            ds.SpecificCharacterSet = UTF8  # PS3.5 §6.1.2.3
            return


def _write(ds: Dataset, syntax: str) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    # No content and no SOPClassUID: the data set names no class, as Orthanc's; its file meta needs one
    # (PS3.10 §7.1), DCMTK's "private generic file" class, as in the files Orthanc makes.
    ds.file_meta.MediaStorageSOPClassUID = ds.get("SOPClassUID") or GENERIC_FILE_CLASS
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
