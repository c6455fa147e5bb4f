"""The tables of DICOM PS3.15 Table E.1-1 per edition, and the rules derived from them."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from dicomweb_daemon.anonymization import generate_tables
from dicomweb_daemon.anonymization.profiles import (
    ACCEPTED_EDITIONS,
    ACTIONS,
    DEFAULT_EDITION,
    EDITIONS,
    OPTIONS,
    ORTHANC_EXTRA_REMOVALS,
    deidentification_method,
    load_table,
    parse_options,
    parse_tag,
    rules,
)

STANDARD = Path("/work/shared/dicom-standard")
ROWS = {"2008": 48, "2017c": 278, "2019c": 378, "2021b": 460, "2023b": 611}

PATIENT_NAME, STUDY_UID, STUDY_DATE, STUDY_DESCRIPTION = 0x00100010, 0x0020000D, 0x00080020, 0x00081030


@pytest.mark.parametrize("edition", ACCEPTED_EDITIONS)
def test_each_edition_has_its_rows_and_the_well_known_ones(edition):
    """Every edition's table has the size of the standard's Table E.1-1 and its best-known rows."""
    table = load_table(edition)
    assert table["edition"] == edition
    assert len(table["rows"]) == ROWS[edition]
    by_tag = {row["tag"]: row for row in table["rows"]}
    assert by_tag["(0020,000D)"]["basic"] == "U"
    assert by_tag["(0008,0018)"]["basic"] == "U"
    r = rules(edition)
    assert r.action(STUDY_UID) == "U"
    if edition == "2008":
        assert r.action(PATIENT_NAME) == "X" and r.action(STUDY_DATE) is None
        return
    assert by_tag["(0010,0010)"] == {"name": "Patient's Name", "tag": "(0010,0010)", "basic": "Z"}
    assert by_tag["(0008,0020)"]["basic"] == "Z"
    assert by_tag["(50xx,xxxx)"]["basic"] == "X"
    assert by_tag["(gggg,eeee) where gggg is odd"]["RetainSafePrivate"] == "C"
    assert r.action(PATIENT_NAME) == "Z" and r.action(STUDY_DATE) == "Z"


def test_edition_sets_and_default():
    """Orthanc's DicomVersion values, 2019c also accepted, and the newest by default."""
    assert EDITIONS == ("2008", "2017c", "2021b", "2023b")
    assert DEFAULT_EDITION == "2023b" and "2019c" in ACCEPTED_EDITIONS
    assert rules() is rules("2023b")
    with pytest.raises(ValueError, match="2022a"):
        rules("2022a")


def test_option_columns_per_edition():
    """2017c has no Retain Institution Identity column; later editions have all ten; 2008 none."""
    assert load_table("2008")["options"] == []
    assert load_table("2017c")["options"] == [o for o in OPTIONS if o != "RetainInstitutionIdentity"]
    for edition in ("2019c", "2021b", "2023b"):
        assert load_table(edition)["options"] == list(OPTIONS)


def test_options_override_the_basic_profile():
    """A chosen option's code replaces the basic one: dates kept or cleaned, descriptions cleaned,
    UIDs kept; K wins when two chosen options disagree."""
    assert rules("2021b", {"RetainLongFullDates"}).action(STUDY_DATE) == "K"
    assert rules("2021b", {"RetainLongModifiedDates"}).action(STUDY_DATE) == "C"
    assert rules("2021b", {"RetainLongFullDates", "RetainLongModifiedDates"}).action(STUDY_DATE) == "K"
    assert rules("2021b").action(STUDY_DESCRIPTION) == "X"
    assert rules("2021b", {"CleanDescriptors"}).action(STUDY_DESCRIPTION) == "C"
    assert rules("2017c", {"RetainUIDs"}).action(STUDY_UID) == "K"
    assert rules("2021b", {"RetainUIDs"}).action(0x00081120) == "X"  # Referenced Patient Sequence
    assert rules("2023b", {"RetainSafePrivate"}).action(0x00091001) == "C"
    assert rules("2023b", {"RetainPatientCharacteristics"}).action(0x00100040) == "K"  # Patient's Sex
    chosen = frozenset({"RetainInstitutionIdentity"})  # no such column in 2017c: nothing changes
    assert rules("2017c", chosen) == replace(rules("2017c"), options=chosen)


def test_parse_options_rejects_unknown_names():
    """Known option names pass as a frozenset; an unknown one is named in the error."""
    assert parse_options(["CleanGraphics", "RetainUIDs"]) == frozenset({"CleanGraphics", "RetainUIDs"})
    with pytest.raises(ValueError, match="RetainEverything"):
        parse_options(["RetainUIDs", "RetainEverything"])
    with pytest.raises(ValueError, match="retainUIDs"):
        rules("2021b", {"retainUIDs"})


def test_combined_codes_collapse_as_orthanc_does():
    """X/Z, X/D, X/Z/D remove; Z/D empties; X/Z/U* keeps the sequence with its UIDs remapped."""
    r = rules("2021b")
    assert r.action(0x00080022) == "X"  # Acquisition Date, X/Z
    assert r.action(0x00080021) == "X"  # Series Date, X/D
    assert r.action(0x00080080) == "X"  # Institution Name, X/Z/D
    assert r.action(0x00080023) == "Z"  # Content Date, Z/D
    assert r.action(0x00081140) == "U"  # Referenced Image Sequence, X/Z/U*
    assert r.action(0x00189367) == "D"  # X-Ray Source ID, D


def test_patterns_match_repeating_groups_and_private_tags():
    """(50xx,xxxx) and (60xx,4000) match the even groups of their range; odd groups are private."""
    assert parse_tag("(50xx,xxxx)") == (0x50000000, 0xFF010000)
    assert parse_tag("(0040,4028)") == (0x00404028, 0xFFFFFFFF)
    r = rules("2023b")
    assert r.action(0x50020010) == "X"
    assert r.action(0x601E4000) == "X" and r.action(0x601E3000) == "X"
    assert r.action(0x60000010) is None  # Overlay Rows: not in the table
    assert r.action(0x00090010) == "X" and r.action(0x00291010) == "X"
    assert r.action(0x00080060) is None  # Modality


def test_orthanc_flavour():
    """Orthanc 1.10.1 empties D, applies repeating-group rows in sequence items only, and removes four
    more attributes in 2008 mode; private tags are still removed at the top level."""
    standard, orthanc = rules("2021b"), rules("2021b", orthanc=True)
    assert orthanc.dummy == frozenset() and standard.dummy <= orthanc.clear
    assert orthanc.action(0x50020010) is None and orthanc.action(0x50020010, nested=True) == "X"
    assert orthanc.action(0x00090010) == "X"
    assert ORTHANC_EXTRA_REMOVALS["2008"] <= rules("2008", orthanc=True).remove
    assert not ORTHANC_EXTRA_REMOVALS["2008"] & rules("2008").remove


def test_every_code_of_every_table_is_handled():
    """Each code found in the Basic Profile and option columns maps to one of the sets of the rules."""
    for edition in ACCEPTED_EDITIONS:
        for row in load_table(edition)["rows"]:
            codes = {v for k, v in row.items() if k not in ("name", "tag")}
            assert codes <= set(ACTIONS), (edition, row)
        for options in (frozenset(), frozenset(OPTIONS)):
            r = rules(edition, options)
            sets = (r.remove, r.clear, r.dummy, r.clean, r.keep, r.uids)
            tags = {parse_tag(row["tag"]) for row in load_table(edition)["rows"]}
            exact = {value for value, mask in tags if mask == 0xFFFFFFFF}
            assert set().union(*sets) == exact
            assert sum(len(s) for s in sets) == len(exact)  # disjoint
            for value, mask in tags - {(v, 0xFFFFFFFF) for v in exact}:
                assert any((value, mask) == p[:2] for p in r.patterns)


def test_deidentification_method_text():
    """The text Orthanc writes in De-identification Method, 2008 without "Basic Profile"."""
    assert deidentification_method("2017c", "1.10.1") == "Orthanc 1.10.1 - PS 3.15-2017c Table E.1-1 Basic Profile"
    assert deidentification_method("2008", "1.10.1") == "Orthanc 1.10.1 - PS 3.15-2008 Table E.1-1"


@pytest.mark.skipif(not STANDARD.exists(), reason="the DocBook sources of the standard are not here")
@pytest.mark.parametrize("edition", generate_tables.EDITIONS)
def test_shipped_tables_are_what_the_generator_writes(tmp_path, edition):
    """The JSON shipped in the package is the generator's output for the standard's DocBook XML."""
    out = generate_tables.write_edition(edition, STANDARD / edition / "part15.xml", tmp_path)
    shipped = Path(generate_tables.TABLES / f"{edition}.json")
    assert out.read_text(encoding="utf-8") == shipped.read_text(encoding="utf-8")
    assert json.loads(out.read_text(encoding="utf-8"))["rows"] == load_table(edition)["rows"]
