"""Accept headers as DICOMweb clients write them (PS3.18 §8.7), parsed leniently."""
from __future__ import annotations

import pytest

from dicomweb_daemon.dicom.qido_model import pn_value
from dicomweb_daemon.web.dicomweb.wado_rs import metadata_as_xml
from dicomweb_daemon.web.errors import allow_header
from dicomweb_daemon.web.negotiation import NotAcceptableAccept, parse_accept


def test_quoted_and_bare_parameters_are_the_same():
    """type and transfer-syntax read the same with or without quotes, and names are case-insensitive."""
    quoted = parse_accept('multipart/related; type="application/dicom"; transfer-syntax="1.2.840.10008.1.2.4.50"')[0]
    bare = parse_accept("Multipart/Related;TYPE=application/dicom;Transfer-Syntax=1.2.840.10008.1.2.4.50")[0]
    for r in (quoted, bare):
        assert r.media_type == "multipart/related"
        assert r.part_type == "application/dicom"
        assert r.transfer_syntax == "1.2.840.10008.1.2.4.50"


def test_quality_orders_ranges_and_zero_removes_them():
    """Ranges come best first (stable for equal q); q=0 means not acceptable."""
    ranges = parse_accept("image/png;q=0.2, application/dicom+json, image/jpeg;q=0, */*;q=0.5")
    assert [r.media_type for r in ranges] == ["application/dicom+json", "*/*", "image/png"]


def test_commas_inside_quotes_do_not_split():
    """A quoted type holding parameters stays one range; its inner transfer-syntax is lifted."""
    ranges = parse_accept('multipart/related; type="application/dicom; transfer-syntax=*", image/jpeg')
    assert len(ranges) == 2
    assert ranges[0].part_type == "application/dicom" and ranges[0].transfer_syntax == "*"


def test_repeated_parameter_keeps_the_first_and_old_names_map_to_new():
    """A repeated transfer-syntax keeps its first value; image/dicom+jpeg-ls and transferSyntax are today's names."""
    r = parse_accept("multipart/related; type=image/dicom+jpeg-ls; transferSyntax=1.2.840.10008.1.2.4.80; "
                     "transfer-syntax=1.2.3")[0]
    assert r.part_type == "image/jls"
    assert r.transfer_syntax == "1.2.840.10008.1.2.4.80"


def test_absent_or_empty_header_is_anything():
    """No Accept header means */* (RFC 9110 §12.5.1)."""
    assert [r.media_type for r in parse_accept(None)] == ["*/*"]
    assert [r.media_type for r in parse_accept("  ")] == ["*/*"]


def test_spaces_around_equals_and_quoted_values_as_written():
    """Spaces around ``=`` are allowed; a quoted value is taken as written, inner spaces included."""
    spaced = parse_accept('multipart/related;   type =  "application/octet-stream"  ')[0]
    assert spaced.part_type == "application/octet-stream"
    padded = parse_accept('multipart/related;   type =  "  application/octet-stream"  ')[0]
    assert padded.part_type == "  application/octet-stream"


def test_a_parameter_without_value_makes_the_range_malformed():
    """``range=`` is no token nor quoted string (RFC 9110 §5.6.6): that range is left out, the others kept."""
    assert parse_accept("multipart/related;range=") == []
    assert [r.media_type for r in parse_accept("multipart/related;range=, application/json")] == ["application/json"]


def test_metadata_prefers_json_whenever_allowed():
    """Metadata is JSON if any range allows it, XML only when nothing else is allowed, else a 400."""
    assert metadata_as_xml(parse_accept("application/dicom+xml, application/json")) is False
    assert metadata_as_xml(parse_accept("multipart/related; type=application/dicom+xml")) is True
    for bad in ("multipart/related", "application/nope", "multipart/related; type=application/dicom+xml; "
                "transfer-syntax=1.2.840.10008.1.2.1"):
        with pytest.raises(NotAcceptableAccept) as caught:
            metadata_as_xml(parse_accept(bad))
        assert caught.value.status == 400


def test_allow_header_is_written_as_orthanc_writes_it():
    """Allow lists GET, POST, PUT, DELETE in that order, comma-joined, HEAD and OPTIONS implied."""
    assert allow_header({"POST", "HEAD", "GET", "OPTIONS"}) == "GET,POST"
    assert allow_header({"DELETE", "PUT", "GET", "HEAD"}) == "GET,PUT,DELETE"


def test_person_name_with_other_groups_has_all_three():
    """A name with an ideographic group has all three groups, the phonetic one "" when absent,
    written or not (Orthanc's DICOM JSON); an alphabetic name alone has one."""
    for text in ("Wang^XiaoDong=王^小东=", "Wang^XiaoDong=王^小东"):
        assert pn_value(text) == {"Alphabetic": "Wang^XiaoDong", "Ideographic": "王^小东", "Phonetic": ""}
    assert pn_value("Doe^John") == {"Alphabetic": "Doe^John"}
