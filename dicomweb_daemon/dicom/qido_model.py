"""The DICOM side of QIDO-RS and STOW-RS answers: attribute names, default result attributes per
level (PS3.18 §10.6.3.3), DICOM JSON built from indexed text (PS3.18 Annex F), and the Native DICOM
Model XML (PS3.19 Annex A) built from DICOM JSON."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import lru_cache

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

UTF8 = "ISO_IR 192"  # our JSON and XML are Unicode whatever the files' SpecificCharacterSet

# PS3.18 Table 10.6.3-3: Study result attributes (TimezoneOffsetFromUTC only when asked for).
STUDY_FIELDS = (
    "SpecificCharacterSet", "StudyDate", "StudyTime", "AccessionNumber", "InstanceAvailability",
    "ModalitiesInStudy", "ReferringPhysicianName", "RetrieveURL", "PatientName", "PatientID",
    "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID", "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
# PS3.18 Table 10.6.3-4: Series result attributes.
SERIES_FIELDS = (
    "SpecificCharacterSet", "Modality", "SeriesDescription", "RetrieveURL", "SeriesInstanceUID",
    "SeriesNumber", "NumberOfSeriesRelatedInstances", "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime", "RequestAttributesSequence",
)
# PS3.18 Table 10.6.3-5: Instance result attributes.
INSTANCE_FIELDS = (
    "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "InstanceAvailability", "RetrieveURL",
    "InstanceNumber", "Rows", "Columns", "BitsAllocated", "NumberOfFrames",
)

INT_VRS = {"IS", "SL", "SS", "UL", "US", "SV", "UV"}
FLOAT_VRS = {"DS", "FL", "FD"}
SINGLE_VALUE_VRS = {"LT", "ST", "UT", "UR"}  # backslash is text there, not a separator
PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
PN_COMPONENTS = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")
NATIVE_NS = "http://dicom.nema.org/PS3.19/models/NativeDICOM"
_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"


def default_fields(level: int, study_key: bool, series_key: bool) -> list[str]:
    """Result attributes of a search at ``level`` (1 study, 2 series, 3 instance).

    Series and instance results also carry their study's attributes unless StudyInstanceUID is a
    matching key (``study_key``), and instance results their series' unless SeriesInstanceUID is
    (PS3.18 Tables 6.7.1-2a/2b, as Orthanc reads them: a UID in the URL path does not count); the
    UIDs of the ancestors are always returned so that a client can build URLs."""
    own = {1: STUDY_FIELDS, 2: SERIES_FIELDS, 3: INSTANCE_FIELDS}[level]
    fields = list(own)
    if level >= 2:
        fields.append("StudyInstanceUID")
        if not study_key:
            fields += [f for f in STUDY_FIELDS if f != "RetrieveURL"]
    if level == 3:
        fields.append("SeriesInstanceUID")
        if not series_key:
            fields += [f for f in SERIES_FIELDS if f != "RetrieveURL"]
    return list(dict.fromkeys(fields))


def attribute_tag(name: str) -> int | None:
    """The tag of a QIDO attribute ID: a keyword or eight hex digits (PS3.18 §8.3.4.1)."""
    s = name.strip()
    if len(s) == 8:
        try:
            return int(s, 16)
        except ValueError:
            pass
    return tag_for_keyword(s)


@lru_cache(maxsize=4096)
def vr_of(tag: int) -> str:
    """The dictionary VR of ``tag`` (the first one when ambiguous, UN when unknown)."""
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    return vr.split(" or ")[0]


@lru_cache(maxsize=4096)
def keyword_of(tag: int) -> str:
    return keyword_for_tag(tag) or ""


@lru_cache(maxsize=4096)
def tag_hex(tag: int) -> str:
    return f"{tag:08X}"


def _number(text: str, vr: str):
    text = text.strip()
    if not text:
        return None
    try:
        if vr in INT_VRS:
            return int(text)
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() and not any(c in text for c in ".eE") else value


def pn_value(text: str) -> dict:
    """A person name in DICOM JSON: its component groups split at ``=`` (PS3.18 §F.2.2). A name
    with more than its alphabetic group has all three, the missing ones as ``""`` (Orthanc writes
    ``Wang^XiaoDong=王^小东`` with an empty Phonetic group); an alphabetic name alone has one."""
    groups = text.split("=")
    if len(groups) > 1:
        groups += [""] * (len(PN_GROUPS) - len(groups))
    return dict(zip(PN_GROUPS, groups, strict=False))


def text_attr(vr: str, text: str) -> dict:
    """DICOM JSON of an attribute from its indexed text (values joined by backslash)."""
    attr: dict = {"vr": vr}
    if text == "":
        return attr
    parts = [text] if vr in SINGLE_VALUE_VRS else text.split("\\")
    if vr == "PN":
        values = [pn_value(p) if p else None for p in parts]
    elif vr in INT_VRS or vr in FLOAT_VRS:
        values = [_number(p, vr) for p in parts]
    else:
        values = [p if p else None for p in parts]
    attr["Value"] = values
    return attr


def json_texts(attr: dict | None) -> list[str]:
    """The values of a DICOM JSON attribute as text, for matching (every group of a PN)."""
    if not attr:
        return []
    out: list[str] = []
    for v in attr.get("Value") or ():
        if isinstance(v, dict):
            out += [v[g] for g in PN_GROUPS if v.get(g)]
        elif v is not None:
            out.append(str(v))
    return out


# -- PS3.19 Native DICOM Model ------------------------------------------------------------------
def _add_attributes(parent: ET.Element, dataset: dict) -> None:
    for key in sorted(dataset):
        attr = dataset[key]
        vr = attr.get("vr", "UN")
        node = ET.SubElement(parent, "DicomAttribute", tag=key, vr=vr)
        try:
            kw = keyword_of(int(key, 16))
        except ValueError:
            kw = ""
        if kw:
            node.set("keyword", kw)
        if "BulkDataURI" in attr:
            ET.SubElement(node, "BulkData", uri=attr["BulkDataURI"])
            continue
        if "InlineBinary" in attr:
            ET.SubElement(node, "InlineBinary").text = attr["InlineBinary"]
            continue
        for number, value in enumerate(attr.get("Value") or (), start=1):
            if vr == "SQ":
                item = ET.SubElement(node, "Item", number=str(number))
                _add_attributes(item, value or {})
            elif vr == "PN":
                name = ET.SubElement(node, "PersonName", number=str(number))
                for group in PN_GROUPS:
                    text = (value or {}).get(group)
                    if text:
                        g = ET.SubElement(name, group)
                        for comp, part in zip(PN_COMPONENTS, text.split("^"), strict=False):
                            if part:
                                ET.SubElement(g, comp).text = part
            else:
                v = ET.SubElement(node, "Value", number=str(number))
                if value is not None:
                    v.text = str(value)


def native_xml(dataset: dict) -> bytes:
    """One DICOM JSON dataset as a PS3.19 NativeDicomModel document, UTF-8."""
    root = ET.Element("NativeDicomModel", {"xmlns": NATIVE_NS, _XML_SPACE: "preserve"})
    _add_attributes(root, dataset)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
