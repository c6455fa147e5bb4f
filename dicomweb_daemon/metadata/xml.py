"""DICOM JSON (PS3.18 §F.2) to the Native DICOM Model XML (PS3.19 §A.1), for
``multipart/related; type="application/dicom+xml"`` metadata answers."""
from __future__ import annotations

import json
from xml.etree import ElementTree as ET

from pydicom.datadict import keyword_for_tag

NAMESPACE = "http://dicom.nema.org/PS3.19/models/NativeDICOM"
_PN_PARTS = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")


def _text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _person_name(parent: ET.Element, number: int, value: dict) -> None:
    pn = ET.SubElement(parent, "PersonName", number=str(number))
    for group in ("Alphabetic", "Ideographic", "Phonetic"):
        if not value.get(group):
            continue
        g = ET.SubElement(pn, group)
        for name, part in zip(_PN_PARTS, value[group].split("^"), strict=False):
            if part:
                ET.SubElement(g, name).text = part


def _attributes(parent: ET.Element, body: dict) -> None:
    for key in sorted(body):
        attr = body[key]
        vr = attr.get("vr", "UN")
        el = ET.SubElement(parent, "DicomAttribute", tag=key.upper(), vr=vr)
        kw = keyword_for_tag(int(key, 16))
        if kw:
            el.set("keyword", kw)
        if "BulkDataURI" in attr:
            ET.SubElement(el, "BulkData", uri=attr["BulkDataURI"])
        elif "InlineBinary" in attr:
            ET.SubElement(el, "InlineBinary").text = attr["InlineBinary"]
        for n, value in enumerate(attr.get("Value", ()), start=1):
            if vr == "SQ":
                _attributes(ET.SubElement(el, "Item", number=str(n)), value or {})
            elif vr == "PN" and isinstance(value, dict):
                _person_name(el, n, value)
            elif value is not None:
                ET.SubElement(el, "Value", number=str(n)).text = _text(value)


def json_to_xml(instance_json: bytes) -> bytes:
    """One instance's DICOM JSON object as a NativeDicomModel document, UTF-8."""
    root = ET.Element("NativeDicomModel", xmlns=NAMESPACE)
    _attributes(root, json.loads(instance_json))
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False)
