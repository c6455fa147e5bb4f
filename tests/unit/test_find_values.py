"""A search and its answers' values in one SQL query (the C-FIND path): the same IDs, in the same
order, with the same values as ``find`` followed by ``requested_tags``, at every level, on the
engine the suite runs against (SQLite, or PostgreSQL with DICOMWEB_TEST_POSTGRESQL)."""
from __future__ import annotations

import pytest
import pytest_twisted

from dicomweb_daemon.index.writes import Origin
from dicomweb_daemon.storage.sources import BytesSource
from dicomweb_daemon.threads import in_db, in_db_write
from tests.dicom_files import make_ct

NAMES = {
    "Patient": ["PatientName", "PatientID", "PatientBirthDate", "NumberOfPatientRelatedStudies",
                "NumberOfPatientRelatedSeries", "NumberOfPatientRelatedInstances", "NumberOfStudyRelatedInstances",
                "InstanceAvailability"],
    "Study": ["StudyDate", "AccessionNumber", "ModalitiesInStudy", "SOPClassesInStudy", "PatientName", "PatientID",
              "StudyInstanceUID", "NumberOfStudyRelatedInstances", "NumberOfStudyRelatedSeries",
              "NumberOfSeriesRelatedInstances", "InstanceAvailability"],
    "Series": ["Modality", "SeriesInstanceUID", "StudyInstanceUID", "PatientID", "NumberOfSeriesRelatedInstances",
               "StudyDate", "ModalitiesInStudy"],
    "Instance": ["SOPInstanceUID", "SOPClassUID", "InstanceNumber", "SeriesInstanceUID", "StudyInstanceUID",
                 "PatientName", "Modality", "StudyDate"],
}
QUERIES = [{}, {"PatientName": "SMITH*"}, {"PatientName": "smith^j?hn*"}, {"StudyDate": "20150101-20151231"},
           {"PatientID": "P2"}, {"Modality": "MR"}, {"ModalitiesInStudy": "CT\\SR"}, {"AccessionNumber": "NONE"}]


async def _corpus(d) -> None:
    """Three patients, five studies, CT + MR or SR series, 1 to 3 instances each."""
    files = []
    for p, (name, dates) in enumerate([("SMITH^JOHN", ["20150203", "20160101"]), ("Smith^Jane", ["20150707"]),
                                       ("DOE^ANN", ["20140101", "20150909"])]):
        for s, date in enumerate(dates):
            study = f"1.2.826.0.1.3680043.10.543.{p}.{s}"
            for k, (modality, count) in enumerate([("CT", 1 + s), ("MR" if p != 2 else "SR", 3 - s)]):
                for n in range(count):
                    files.append(make_ct(f"P{p}", name, study_uid=study, series_uid=f"{study}.{k}",
                                         modality=modality, study_date=date, instance_number=n + 1,
                                         extra={"AccessionNumber": f"ACC{p}{s}"}))
    results = await d.ingest.store([BytesSource(f) for f in files], Origin("RestApi"))
    assert all(r.stored for r in results)


@pytest_twisted.ensureDeferred
async def test_one_query_gives_what_find_and_requested_tags_give(local_daemon):
    d = local_daemon
    await _corpus(d)
    index = d.index
    for level, names in NAMES.items():
        for query in QUERIES:
            for limit in (0, 2):
                found = await in_db(index.find_with_values, level, query, names, False, limit)
                assert found is not None, (level, query)
                ids = await in_db(index.find, level, query, False, limit)
                values = await in_db(index.requested_tags, ids, names)
                assert found[0] == ids, (level, query, limit)
                assert found[1] == [values[i] for i in ids], (level, query, limit)
    studies, answers = await in_db(index.find_with_values, "Study", {"PatientName": "SMITH*"}, NAMES["Study"],
                                   False, 0)
    assert len(studies) == 3  # case-insensitive: both Smiths
    first = answers[0]
    assert first["ModalitiesInStudy"] == "CT\\MR" and first["NumberOfStudyRelatedInstances"] == "4"
    assert "NumberOfSeriesRelatedInstances" not in first and first["InstanceAvailability"] == "ONLINE"


@pytest_twisted.ensureDeferred
async def test_keys_outside_the_index_take_the_general_way(local_daemon):
    """A key or a constraint that is not a main tag at the level or above (read from the stored
    DICOM JSON of the first instance): None, and the caller runs find + requested_tags."""
    d = local_daemon
    await _corpus(d)
    assert await in_db(d.index.find_with_values, "Study", {}, ["Modality"], False, 0) is None
    assert await in_db(d.index.find_with_values, "Study", {}, ["SliceThickness"], False, 0) is None
    assert await in_db(d.index.find_with_values, "Series", {}, ["SOPClassUID"], False, 0) is None
    assert await in_db(d.index.find_with_values, "Study", {"SliceThickness": "1"}, ["PatientID"], False, 0) is None
    assert await in_db(d.index.find_with_values, "Study", {"SliceThickness": ""}, ["PatientID"], False, 0) is not None


@pytest_twisted.ensureDeferred
async def test_since_and_labels_as_find_takes_them(local_daemon):
    """``/tools/find`` pages with Since and filters by Labels: the one-query path takes both as
    ``find`` does."""
    d = local_daemon
    await _corpus(d)
    studies = await in_db(d.index.find, "Study", {}, False, 0)
    for public_id in studies[1:4]:
        await in_db_write(d.index.add_label, public_id, "Study", "teaching")
    await in_db_write(d.index.add_label, studies[2], "Study", "research")
    names = ["PatientID", "StudyDate", "NumberOfStudyRelatedSeries"]
    for labels, constraint in (([], "All"), (["teaching"], "All"), (["teaching", "research"], "Any"),
                               (["research"], "None"), (["teaching", "research"], "All")):
        for since, limit in ((0, 0), (1, 2), (2, 0)):
            ids = await in_db(d.index.find, "Study", {"PatientName": "*"}, False, limit, since, labels, constraint)
            found = await in_db(d.index.find_with_values, "Study", {"PatientName": "*"}, names, False, limit,
                                since, labels, constraint)
            values = await in_db(d.index.requested_tags, ids, names)
            assert found == (ids, [values[i] for i in ids]), (labels, constraint, since, limit)
    assert len(await in_db(d.index.find, "Study", {}, False, 0, 0, ["teaching"], "All")) == 3


@pytest_twisted.ensureDeferred
async def test_streamed_answers_come_in_growing_chunks_then_none(local_daemon):
    """C-FIND's reading (``dimse.find.stream_answers``): the same answers as ``find_answers``, in
    chunks of 2, 6, 18... then None; the keys off the index (all at once) too; ``stopped`` ends it
    after the chunk under way."""
    from dicomweb_daemon.dimse.find import FindRequest, find_answers, stream_answers

    d = local_daemon
    await _corpus(d)
    for asked in (NAMES["Instance"], ["SOPInstanceUID", "SliceThickness"]):  # the second: not indexed
        request = FindRequest("Instance", {"StudyDate": "2015*"}, asked)
        _ids, expected = await in_db(find_answers, d.index, request, False, 0)
        for stop_after in (None, 1):
            chunks: list = []

            def stopped(chunks=chunks, stop_after=stop_after) -> bool:
                return stop_after is not None and len(chunks) >= stop_after

            await in_db(stream_answers, d.index, request, False, 0, 2, chunks.append, stopped)
            assert chunks[-1] is None
            got = [answer for chunk in chunks[:-1] for answer in chunk]
            if stop_after is not None and asked == NAMES["Instance"]:
                assert len(chunks) == 2 and got == expected[:2]
                continue
            assert sorted(got, key=str) == sorted(expected, key=str) and len(expected) == 12
            if asked == NAMES["Instance"]:
                assert [len(c) for c in chunks[:-1]] == [2, 6, 4]
            else:
                assert len(chunks) == 2  # all at once


@pytest_twisted.ensureDeferred
async def test_a_streamed_search_that_fails_still_ends_with_none(local_daemon):
    from dicomweb_daemon.dimse.find import FindRequest, stream_answers

    chunks: list = []
    request = FindRequest("Nowhere", {}, ["StudyDate"])  # no such level: the index raises
    with pytest.raises(KeyError):
        await in_db(stream_answers, local_daemon.index, request, False, 0, 2, chunks.append, lambda: False)
    assert chunks == [None]
