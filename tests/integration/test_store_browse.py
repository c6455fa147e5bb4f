"""Storing instances and browsing them as Orthanc does."""
from __future__ import annotations

import hashlib
import io
import zipfile

import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.dicom_files import CT_SMALL, MR_SMALL, make_ct

pytestmark = pytest.mark.storage  # runs again with the files in an S3 bucket (tests/object_store.py)

CT_SMALL_IDS = {  # computed by Orthanc's formula for CT_small.dcm
    "ID": "f689ddd2-662f8fe1-8b18180d-ec2a2cee-937917af",
    "ParentPatient": "fa558bce-587a86d3-ad0da9b3-9d043d9d-4f5c5718",
    "ParentStudy": "8a8cf898-ca27c490-d0c7058c-929d0581-2bbf104d",
    "ParentSeries": "93034833-163e42c3-bc9a428b-194620cf-2c5799e5",
}


def orthanc_id(*parts: str) -> str:
    h = hashlib.sha1("|".join(parts).encode()).hexdigest()
    return "-".join(h[i : i + 8] for i in range(0, 40, 8))


def test_store_answers_like_orthanc_with_orthanc_ids(daemon):
    """POST /instances answers ID, parents, Path and Status, with Orthanc's resource IDs."""
    answer = daemon.store(CT_SMALL)
    for key, value in CT_SMALL_IDS.items():
        assert answer[key] == value
    assert answer["Path"] == f"/instances/{CT_SMALL_IDS['ID']}"
    assert answer["Status"] in ("Success", "AlreadyStored")
    again = daemon.store(CT_SMALL)
    assert again["Status"] == "AlreadyStored"
    assert again["ID"] == CT_SMALL_IDS["ID"]


def test_ids_follow_the_formula_for_generated_files(daemon):
    """The four IDs are SHA-1 of the UIDs, in five groups of eight."""
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    answer = daemon.store(make_ct("PX-1", study_uid=study, series_uid=series, sop_uid=sop))
    assert answer["ParentPatient"] == orthanc_id("PX-1")
    assert answer["ParentStudy"] == orthanc_id("PX-1", study)
    assert answer["ParentSeries"] == orthanc_id("PX-1", study, series)
    assert answer["ID"] == orthanc_id("PX-1", study, series, sop)


def test_browse_levels_with_main_tags(daemon):
    """Each level lists IDs, and describes resources with Orthanc's fields."""
    daemon.store(CT_SMALL)
    ids = CT_SMALL_IDS
    assert ids["ParentPatient"] in daemon.get("/patients").json()
    patient = daemon.get(f"/patients/{ids['ParentPatient']}").json()
    assert patient["Type"] == "Patient"
    assert patient["MainDicomTags"]["PatientID"] == "1CT1"
    assert patient["MainDicomTags"]["PatientName"] == "CompressedSamples^CT1"
    assert ids["ParentStudy"] in patient["Studies"]
    assert isinstance(patient["IsStable"], bool) and len(patient["LastUpdate"]) == 15
    study = daemon.get(f"/studies/{ids['ParentStudy']}").json()
    assert study["ParentPatient"] == ids["ParentPatient"]
    assert study["PatientMainDicomTags"]["PatientID"] == "1CT1"
    assert study["MainDicomTags"]["StudyInstanceUID"] == "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
    series = daemon.get(f"/series/{ids['ParentSeries']}").json()
    assert series["MainDicomTags"]["Modality"] == "CT"
    assert series["Instances"] == [ids["ID"]]
    assert series["Status"] == "Unknown" and series["ExpectedNumberOfInstances"] is None
    instance = daemon.get(f"/instances/{ids['ID']}").json()
    assert instance["FileSize"] == 39206
    assert instance["IndexInSeries"] == 1
    assert instance["ParentSeries"] == ids["ParentSeries"]
    assert len(instance["FileUuid"]) == 36


def test_expand_since_limit(daemon):
    """?expand returns objects; ?since and ?limit page in creation order."""
    for i in range(3):
        daemon.store(make_ct(f"PAGE-{i}"))
    everything = daemon.get("/patients").json()
    assert len(everything) >= 3
    assert daemon.get("/patients?since=1&limit=2").json() == everything[1:3]
    expanded = daemon.get("/patients?expand&since=0&limit=2").json()
    assert [p["ID"] for p in expanded] == everything[:2]
    assert all(p["Type"] == "Patient" for p in expanded)


def test_children_and_parents_routes(daemon):
    """Child routes list expanded descendants; parent routes return the one ancestor."""
    ids = daemon.store(MR_SMALL)
    instances = daemon.get(f"/studies/{ids['ParentStudy']}/instances").json()
    assert [i["ID"] for i in instances] == [ids["ID"]]
    assert daemon.get(f"/patients/{ids['ParentPatient']}/series").json()[0]["ID"] == ids["ParentSeries"]
    assert daemon.get(f"/instances/{ids['ID']}/patient").json()["ID"] == ids["ParentPatient"]
    assert daemon.get(f"/instances/{ids['ID']}/study").json()["ID"] == ids["ParentStudy"]
    assert daemon.get(f"/series/{ids['ParentSeries']}/study").json()["ID"] == ids["ParentStudy"]
    assert daemon.get(f"/patients/{ids['ParentPatient']}/instance").status_code == 404


def test_file_tags_and_content(daemon):
    """The stored file comes back byte for byte; tags and content views read it."""
    ids = daemon.store(CT_SMALL)
    original = open(CT_SMALL, "rb").read()
    r = daemon.get(f"/instances/{ids['ID']}/file")
    assert r.status_code == 200 and r.content == original
    assert r.headers["Content-Type"] == "application/dicom"
    tags = daemon.get(f"/instances/{ids['ID']}/tags").json()
    assert tags["0010,0010"] == {"Name": "PatientName", "Type": "String", "Value": "CompressedSamples^CT1"}
    assert tags["7fe0,0010"] == {"Name": "PixelData", "Type": "Null", "Value": None}
    assert tags["0009,0010"] == {"Name": "PrivateCreator", "Type": "String", "Value": "GEMS_IDEN_01"}
    assert tags["0043,1028"]["PrivateCreator"] == "GEMS_PARM_01"
    # Private tags are named by the configured Dictionary only (none here), as Orthanc's tests expect
    assert tags["0043,1028"]["Name"] == "Unknown Tag & Data" and tags["0043,1028"]["Type"] == "Null"
    simple = daemon.get(f"/instances/{ids['ID']}/simplified-tags").json()
    assert simple["PatientID"] == "1CT1" and simple["PixelData"] is None
    assert daemon.get(f"/instances/{ids['ID']}/tags?simplify").json()["PatientID"] == "1CT1"
    assert daemon.get(f"/instances/{ids['ID']}/content/0010-0020").content == b"1CT1"
    listing = daemon.get(f"/instances/{ids['ID']}/content").json()
    assert "0010-0020" in listing
    # Native pixel data are one item ("0") whose content is the pixel data (Orthanc's content/ walk)
    assert daemon.get(f"/instances/{ids['ID']}/content/7fe0-0010").json() == ["0"]
    pixels = daemon.get(f"/instances/{ids['ID']}/content/7fe0-0010/0").content
    assert pixels == pydicom.dcmread(CT_SMALL).PixelData
    assert daemon.get(f"/instances/{ids['ID']}/content/0010-9999").status_code == 404


def test_content_walks_into_sequences_and_returns_pdf(daemon):
    """content/ walks sequence items, and returns an encapsulated PDF's raw bytes."""
    pdf = b"%PDF-1.4\n% a tiny document\n%%EOF\n\n"  # even length: no padding
    ref = pydicom.Dataset()
    ref.ReferencedSOPInstanceUID = "1.2.3.4"
    data = make_ct("PDF-1", extra={"MIMETypeOfEncapsulatedDocument": "application/pdf",
                                   "EncapsulatedDocument": pdf, "ReferencedImageSequence": [ref]})
    ids = daemon.store(data)
    assert daemon.get(f"/instances/{ids['ID']}/content/0042-0011").content == pdf
    assert daemon.get(f"/instances/{ids['ID']}/content/0008-1140").json() == ["0"]
    # A value comes as stored, with its padding (a NUL for a UID of odd length), as Orthanc gives it
    assert daemon.get(f"/instances/{ids['ID']}/content/0008-1140/0/0008-1155").content == b"1.2.3.4\x00"


def test_zip_upload_stores_good_members_and_reports_bad_ones(daemon):
    """A ZIP stores every good member and reports the bad ones, without failing the whole upload;
    members that are not DICOM files at all are left out of the answer, as Orthanc does."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a/one.dcm", make_ct("ZIP-1"))
        z.writestr("a/broken.dcm", make_ct("ZIP-3")[:300])
        z.writestr("a/notes.txt", b"not dicom at all")
        z.writestr("b/two.dcm", make_ct("ZIP-2"))
    r = daemon.post("/instances", buf.getvalue())
    assert r.status_code == 200
    answers = r.json()
    assert [a["Status"] for a in answers] == ["Success", "Failure", "Success"]
    assert answers[1]["Filename"] == "a/broken.dcm"
    for a in (answers[0], answers[2]):
        assert daemon.get(a["Path"]).status_code == 200


def test_metadata_and_statistics(daemon):
    """Instance metadata has Orthanc's built-in entries; statistics give exact sizes."""
    ids = daemon.store(CT_SMALL)
    meta = daemon.get(f"/instances/{ids['ID']}/metadata?expand").json()
    assert meta["TransferSyntax"] == "1.2.840.10008.1.2.1"
    assert meta["SopClassUid"] == "1.2.840.10008.5.1.4.1.1.2"
    assert meta["Origin"] == "RestApi" and meta["RemoteIP"] == "127.0.0.1" and meta["HttpUsername"] == ""
    assert meta["PixelDataOffset"] == "6288"  # where (7FE0,0010) starts, as Orthanc reports
    assert "ReceptionDate" in daemon.get(f"/instances/{ids['ID']}/metadata").json()
    assert daemon.get(f"/instances/{ids['ID']}/metadata/IndexInSeries").text == "1"
    assert daemon.put(f"/instances/{ids['ID']}/metadata/1024", b"hello").status_code == 200
    assert daemon.get(f"/instances/{ids['ID']}/metadata/1024").text == "hello"
    stats = daemon.get(f"/series/{ids['ParentSeries']}/statistics").json()
    assert stats["CountInstances"] == 1 and stats["DiskSize"] == "39206"
    total = daemon.get("/statistics").json()
    assert total["CountInstances"] >= 1 and int(total["TotalDiskSize"]) >= 39206


def test_attachments(daemon):
    """The dicom attachment is listed, sized, and has the file's MD5."""
    ids = daemon.store(CT_SMALL)
    base = f"/instances/{ids['ID']}/attachments"
    assert daemon.get(base).json() == ["dicom"]
    assert daemon.get(base + "/dicom/size").text == "39206"
    assert daemon.get(base + "/dicom/md5").text == hashlib.md5(open(CT_SMALL, "rb").read()).hexdigest()
    assert daemon.get(base + "/dicom/data").content == open(CT_SMALL, "rb").read()
    assert daemon.post(base + "/dicom/verify-md5").status_code == 200


def test_double_slashes_and_trailing_slash_are_routed(daemon):
    """Paths with doubled slashes are routed as Orthanc does."""
    ids = daemon.store(CT_SMALL)
    assert daemon.get(f"//instances//{ids['ID']}").json()["ID"] == ids["ID"]
    assert daemon.get("/patients/").status_code == 200


def test_series_status_complete_and_missing(daemon):
    """ExpectedNumberOfInstances from ImagesInAcquisition drives the series Status."""
    study, series = generate_uid(), generate_uid()
    first = daemon.store(make_ct("SER-1", study_uid=study, series_uid=series, instance_number=1,
                                 extra={"ImagesInAcquisition": 2}))
    described = daemon.get(f"/series/{first['ParentSeries']}").json()
    assert described["ExpectedNumberOfInstances"] == 2 and described["Status"] == "Missing"
    daemon.store(make_ct("SER-1", study_uid=study, series_uid=series, instance_number=2,
                         extra={"ImagesInAcquisition": 2}))
    assert daemon.get(f"/series/{first['ParentSeries']}").json()["Status"] == "Complete"


def test_default_encoding_decodes_files_without_charset(make_daemon):
    """A Latin-1 name in a file without SpecificCharacterSet is read with DefaultEncoding."""
    d = make_daemon({"DefaultEncoding": "Latin1"})
    data = make_ct("ENC-1", patient_name="PLACEHOLDER^NAME")
    data = data.replace(b"PLACEHOLDER^NAME", "MÜLLER^JOSÉÉÉÉÉÉ".encode("latin-1"))
    answer = d.store(data)
    name = d.get(f"/patients/{answer['ParentPatient']}").json()["MainDicomTags"]["PatientName"]
    assert name == "MÜLLER^JOSÉÉÉÉÉÉ"


def test_patient_protection(daemon):
    """PUT /patients/{id}/protected 1|0 is read back; other bodies are 400."""
    ids = daemon.store(CT_SMALL)
    url = f"/patients/{ids['ParentPatient']}/protected"
    assert daemon.get(url).text == "0"
    assert daemon.put(url, b"1").status_code == 200
    assert daemon.get(url).text == "1"
    assert daemon.put(url, b"yes").status_code == 400
    daemon.put(url, b"0")
    assert daemon.get(url).text == "0"


def test_overwrite_instances_replaces_the_stored_file(make_daemon):
    """With OverwriteInstances, a second file with the same UIDs replaces the first one and its file."""
    d = make_daemon({"OverwriteInstances": True})
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    first = make_ct("OW-1", study_uid=study, series_uid=series, sop_uid=sop, extra={"ImageComments": "first"})
    second = make_ct("OW-1", study_uid=study, series_uid=series, sop_uid=sop, extra={"ImageComments": "second"})
    a = d.store(first)
    uuid_a = d.get(f"/instances/{a['ID']}").json()["FileUuid"]
    b = d.store(second)
    assert b["Status"] == "Success" and b["ID"] == a["ID"]
    info = d.get(f"/instances/{b['ID']}").json()
    assert info["FileUuid"] != uuid_a and info["MainDicomTags"]["ImageComments"] == "second"
    assert d.get(f"/instances/{b['ID']}/file").content == second
    assert not (d.data / uuid_a[0:2] / uuid_a[2:4] / uuid_a).exists()


def test_paging_follows_orthanc_rules(daemon):
    """since and limit go together (400 when one is missing), limit=0 is no limit (Orthanc >= 1.12.5),
    and numbers an index cannot hold, or that are not numbers, are 400 with a JSON body, never a 5xx."""
    daemon.store(make_ct("PAGE-RULES"))
    daemon.store(make_ct("PAGE-RULES-2"))
    everyone = daemon.get("/patients").json()
    assert len(everyone) >= 2
    assert daemon.get("/patients?since=0&limit=0").json() == everyone
    assert daemon.get("/patients?since=1&limit=0").json() == everyone[1:]
    for query in ("since=0", "limit=1", "since=99999999999999999999&limit=1", "since=0&limit=1.5",
                  "since=-1&limit=1"):
        r = daemon.get(f"/patients?{query}")
        assert r.status_code == 400, query
        assert r.json()["HttpStatus"] == 400
    assert daemon.get("/changes?since=99999999999999999999").status_code == 400
    assert daemon.get("/dicom-web/studies?offset=99999999999999999999").status_code == 400
