"""Orthanc's DefaultEncoding names and the DICOM character set each one stands for (PS3.3 C.12.1.1.2)."""
from __future__ import annotations

from pydicom.charset import convert_encodings

SPECIFIC_CHARACTER_SET = {
    "Ascii": "ISO_IR 6", "Utf8": "ISO_IR 192", "Latin1": "ISO_IR 100", "Latin2": "ISO_IR 101",
    "Latin3": "ISO_IR 109", "Latin4": "ISO_IR 110", "Latin5": "ISO_IR 148", "Cyrillic": "ISO_IR 144",
    "Arabic": "ISO_IR 127", "Greek": "ISO_IR 126", "Hebrew": "ISO_IR 138", "Thai": "ISO_IR 166",
    "Japanese": "ISO_IR 13", "Chinese": "GB18030", "Korean": "ISO 2022 IR 149",
    "JapaneseKanji": "ISO 2022 IR 87", "SimplifiedChinese": "GBK",
    # Not a DICOM term: pydicom accepts Python codec names for non-standard files.
    "Windows1251": "cp1251",
}


def charset_for(default_encoding: str) -> str:
    """The SpecificCharacterSet to assume for a file that has none."""
    return SPECIFIC_CHARACTER_SET.get(default_encoding, "ISO_IR 100")


def python_encodings(default_encoding: str) -> list[str]:
    """The Python codecs that read text of a file without SpecificCharacterSet, as Orthanc's
    DefaultEncoding says (Orthanc book: "DefaultEncoding" applies to files that lack the tag)."""
    charset = charset_for(default_encoding)
    if charset == "cp1251":
        return ["cp1251"]
    return convert_encodings([charset])
