"""Accept headers as DICOMweb clients write them (PS3.18 §8.7), parsed leniently."""
from __future__ import annotations

from dicomweb_daemon.web.negotiation import parse_accept


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
