"""Orthanc's JSON answers: the text ujson writes is the standard library's, indented by three
spaces, UTF-8; what ujson refuses is written (or refused) by the standard library."""
from __future__ import annotations

import json

import pytest

from dicomweb_daemon.web.json_text import indented

BODY = {
    "ID": "a9f7e7c1-2f5e4a8b-0c1d2e3f-4a5b6c7d-8e9f0a1b",
    "MainDicomTags": {"PatientName": "Gürbüz^Ådne", "StudyDescription": "CT/MR \"head\" \\ neck",
                      "Institution": "東京\u2028病院"},
    "Series": ["s1", "s2"], "IsStable": True, "ExpectedNumberOfInstances": None,
    "FileSize": 2 ** 40, "Ratio": 0.30000000000000004, "Empty": {}, "None": [], 7: "an integer key",
}


def test_the_text_is_the_standard_librarys_indented_by_three_spaces():
    text = indented(BODY)
    assert text == json.dumps(BODY, indent=3, ensure_ascii=False).encode("utf-8")
    assert text.startswith(b'{\n   "ID": ') and "Gürbüz".encode() in text and b"CT/MR" in text


def test_non_finite_numbers_and_unknown_objects_fare_as_with_the_standard_library():
    assert indented({"x": float("nan")}) == b'{\n   "x": NaN\n}'
    with pytest.raises(TypeError):
        indented({"x": object()})
