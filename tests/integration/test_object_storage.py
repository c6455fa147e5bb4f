"""Files in an object store (S3 API): real daemons against moto's S3 server (an emulator, not Amazon's
S3), each with its own bucket; encryption, key rotation, a store that stops answering, kill -9."""
from __future__ import annotations

import base64
import hashlib
import json
import os

import pydicom
import pytest
from pydicom.data import get_testdata_file

from tests.conftest import free_port
from tests.dicom_files import make_ct
from tests.integration.test_stow import multipart, stow
from tests.object_store import (
    azurite_connection_string,
    blobs,
    client,
    new_bucket,
    new_container,
    objects,
    s3_section,
    start_server,
)

MULTIFRAME = get_testdata_file("emri_small.dcm")  # 10 frames


def s3_daemon(make_daemon, **section):
    return make_daemon({"Backends": {"Storage": "s3"}, "AwsS3Storage": s3_section(**section)})


def restart_with(d, **section) -> None:
    """Stop ``d``, change its AwsS3Storage section, start it again."""
    d.stop()
    d.config["AwsS3Storage"] = {**d.config["AwsS3Storage"], **section}
    d.config_path.write_text(json.dumps(d.config))
    d.start()


def write_key(folder, name: str) -> str:
    path = folder / name
    path.write_bytes(base64.b64encode(os.urandom(32)))
    return str(path)


def test_files_live_in_the_bucket_and_read_by_ranges(make_daemon):
    d = s3_daemon(make_daemon, RootPath="site/one")
    original = open(MULTIFRAME, "rb").read()
    instance = d.store(original)["ID"]
    ct = make_ct("S3", study_uid="1.2.3.4.5")
    assert stow(d, multipart([ct])).status_code == 200
    names = sorted(objects(d.bucket))
    assert len(names) == 2 and all(n.startswith("site/one/") and n.endswith(".dcm") for n in names)
    assert not list(d.data.glob("??/??/*"))  # nothing in the data folder but the index and the spool
    assert hashlib.md5(d.get(f"/instances/{instance}/file").content).hexdigest() == hashlib.md5(original).hexdigest()
    ds = pydicom.dcmread(MULTIFRAME)
    frame_size = ds.Rows * ds.Columns * ds.BitsAllocated // 8
    raw = d.get(f"/instances/{instance}/frames/6/raw").content  # a ranged read (Orthanc counts frames from 0)
    assert raw == ds.PixelData[6 * frame_size:7 * frame_size]
    assert d.get(f"/instances/{instance}/frames/6/preview").headers["Content-Type"] == "image/png"
    study = ds.StudyInstanceUID
    assert d.get(f"/dicom-web/studies?StudyInstanceUID={study}").json()[0]["0020000D"]["Value"] == [study]
    metadata = d.get(f"/dicom-web/studies/{study}/metadata")
    assert metadata.status_code == 200 and metadata.json()[0]["00100010"]
    assert d.post(f"/instances/{instance}/attachments/dicom/verify-md5").status_code == 200
    assert d.delete(f"/instances/{instance}").status_code == 200
    assert len(objects(d.bucket)) == 1
    assert d.get("/health/ready").json()["Checks"]["Storage"] == "OK"


def test_orthanc_configuration_selects_the_s3_storage(make_daemon):
    """An Orthanc configuration file (no Backends key): its AwsS3Storage section is the storage."""
    d = make_daemon({"AwsS3Storage": s3_section()})
    d.store(make_ct("ORTHANC-CONF"))
    assert len(objects(d.config["AwsS3Storage"]["BucketName"])) == 1


def test_legacy_structure_reads_a_data_folder_copied_into_a_bucket(make_daemon):
    """A site moving to object storage copies its data folder (ab/cd/uuid) into a bucket as it is; a
    daemon with StorageStructure "legacy" on the same index serves it."""
    first = make_daemon({"Backends": {"Storage": "filesystem"}})
    ids = [first.store(make_ct("MOVED", instance_number=i))["ID"] for i in (1, 2)]
    files = {f"/instances/{i}/file": first.get(f"/instances/{i}/file").content for i in ids}
    first.stop()
    bucket = new_bucket()
    s3 = client()
    for path in first.data.glob("??/??/*"):
        s3.put_object(Bucket=bucket, Key=f"{path.parent.parent.name}/{path.parent.name}/{path.name}",
                      Body=path.read_bytes())
    index = {k: v for k, v in first.config.items() if k in ("PostgreSQL",)}
    second = make_daemon({**index, "IndexDirectory": str(first.index_folder), "Backends": {"Storage": "s3"},
                          "AwsS3Storage": s3_section(bucket, StorageStructure="legacy")})
    for path, content in files.items():
        assert second.get(path).content == content
    new = second.store(make_ct("MOVED", instance_number=3))["ID"]
    uuid = second.get(f"/instances/{new}/attachments/dicom/info").json()["Uuid"]
    assert f"{uuid[:2]}/{uuid[2:4]}/{uuid}" in objects(bucket)


def test_encrypted_objects_and_key_rotation(make_daemon, tmp_path):
    one, two = write_key(tmp_path, "one.key"), write_key(tmp_path, "two.key")
    d = s3_daemon(make_daemon, StorageEncryption={"Enable": True, "MasterKey": [1, one]})
    original = open(MULTIFRAME, "rb").read()
    old = d.store(original)["ID"]
    d.store(make_ct("SEALED", patient_name="SECRET^NAME"))
    sealed = list(objects(d.bucket).values())
    assert all(o[:4] == b"DWE1" and int.from_bytes(o[4:8], "big") == 1 for o in sealed) and len(sealed) == 2
    assert not any(b"DICM" in o or b"SECRET^NAME" in o for o in sealed)
    assert d.get(f"/instances/{old}/file").content == original
    ds = pydicom.dcmread(MULTIFRAME)
    size = ds.Rows * ds.Columns * 2
    assert d.get(f"/instances/{old}/frames/9/raw").content == ds.PixelData[9 * size:]

    # Rotation: key 2 seals new files, key 1 still opens the old ones.
    restart_with(d, StorageEncryption={"Enable": True, "MasterKey": [2, two], "PreviousMasterKeys": [[1, one]]})
    assert d.get(f"/instances/{old}/file").content == original
    new = d.store(make_ct("ROTATED"))["ID"]
    key_ids = sorted(int.from_bytes(o[4:8], "big") for o in objects(d.bucket).values())
    assert key_ids == [1, 1, 2]

    # Without the previous key: the old file is an error that says which key it needs, not bytes.
    restart_with(d, StorageEncryption={"Enable": True, "MasterKey": [2, two]})
    r = d.get(f"/instances/{old}/file")
    assert r.status_code == 500 and "master key 1" in r.json()["Details"]
    assert r.json()["OrthancError"].startswith("Corrupted file")
    assert d.get(f"/instances/{new}/file").status_code == 200


def test_a_damaged_sealed_object_is_an_error(make_daemon, tmp_path):
    d = s3_daemon(make_daemon, StorageEncryption={"Enable": True, "MasterKey": [9, write_key(tmp_path, "k")]})
    instance = d.store(open(MULTIFRAME, "rb").read())["ID"]
    ((name, sealed),) = objects(d.bucket).items()
    damaged = bytearray(sealed)
    damaged[len(damaged) // 2] ^= 0x40
    client().put_object(Bucket=d.bucket, Key=name, Body=bytes(damaged))
    r = d.get(f"/instances/{instance}/file")
    assert r.status_code == 500 and "fails authentication" in r.json()["Details"]
    assert d.get(f"/instances/{instance}/frames/1/raw").status_code in (200, 500)  # a chunk before the damage
    assert d.get("/system").status_code == 200


def test_an_object_store_that_stops_answering(make_daemon):
    """The store goes down: reads and writes are 503 with a JSON body naming the storage, nothing is
    indexed, readiness says why; once it is back, the daemon stores again."""
    port = free_port()
    url, server = start_server(port)
    bucket = new_bucket(url)
    d = make_daemon({"Backends": {"Storage": "s3"}, "AwsS3Storage": s3_section(bucket, Endpoint=url)})
    stored = d.store(make_ct("UP"))["ID"]
    server.kill()
    server.wait()
    for r in (d.get(f"/instances/{stored}/file"), d.post("/instances", make_ct("DOWN", instance_number=2)),
              stow(d, multipart([make_ct("DOWN", instance_number=3)]))):
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["OrthancStatus"] == 32 and "object store" in body["Message"] and "Traceback" not in r.text
    assert d.get("/instances").json() == [stored]
    ready = d.get("/health/ready")
    assert ready.status_code == 503 and "cannot be listed" in ready.json()["Checks"]["Storage"]
    url, server = start_server(port)  # moto keeps nothing: an empty server again
    try:
        new_bucket(url, bucket)
        again = d.store(make_ct("BACK", instance_number=4))["ID"]
        assert d.get(f"/instances/{again}/file").status_code == 200
        assert d.get("/health/ready").status_code == 200
    finally:
        server.kill()


def test_an_acknowledged_store_survives_kill_9(make_daemon):
    d = s3_daemon(make_daemon)
    data = make_ct("KILLED", size=256)
    assert stow(d, multipart([data])).status_code == 200
    d.kill9()
    d.start()
    (instance,) = d.get("/instances").json()
    assert d.get(f"/instances/{instance}/file").content == data
    assert len(objects(d.bucket)) == 1


@pytest.mark.parametrize("section, message", [
    ({"Region": "us-east-1"}, "AwsS3Storage.BucketName is required"),
    ({"BucketName": "x-missing", "Endpoint": "http://127.0.0.1:9", "ConnectionTimeout": 1},
     "AwsS3Storage: the object store cannot be listed"),
    ({"BucketName": "b", "StorageStructure": "deep"}, "StorageStructure must be one of flat, legacy"),
    ({"BucketName": "b", "StorageEncryption": {"Enable": True, "MasterKey": [1, "/no/such.key"]}},
     "cannot read the key file"),
])
def test_configuration_mistakes_stop_the_start_naming_the_key(make_daemon, section, message):
    d = make_daemon({"Backends": {"Storage": "s3"}, "AwsS3Storage": section}, start=False)
    with pytest.raises(RuntimeError, match=message):
        d.start()  # raises with the daemon's log once it has exited


def test_azure_blob_storage(make_daemon, tmp_path):
    """The same storage on Azure Blob Storage (Azurite, the emulator), sealed: Orthanc's
    AzureBlobStorage section selects it."""
    container = new_container()
    d = make_daemon({"AzureBlobStorage": {
        "ConnectionString": azurite_connection_string(), "ContainerName": container, "RootPath": "dicom",
        "StorageEncryption": {"Enable": True, "MasterKey": [4, write_key(tmp_path, "k")]}}})
    original = open(MULTIFRAME, "rb").read()
    instance = d.store(original)["ID"]
    (name,) = blobs(container)
    assert name.startswith("dicom/") and blobs(container)[name][:4] == b"DWE1"
    assert d.get(f"/instances/{instance}/file").content == original
    ds = pydicom.dcmread(MULTIFRAME)
    size = ds.Rows * ds.Columns * 2
    assert d.get(f"/instances/{instance}/frames/3/raw").content == ds.PixelData[3 * size:4 * size]
    assert d.get("/health/ready").status_code == 200
    assert d.delete(f"/instances/{instance}").status_code == 200
    assert blobs(container) == {}


def test_sealed_ranges_anywhere_in_the_object(tmp_path, monkeypatch):
    """Ranged reads of a sealed object (the header with the chunks near it in one request, or remembered):
    bytes in the first chunk, across chunks, in the last short one, past the end (none), far from the
    start, and in a file sealed with chunks of another size (the header tells) are the content's, read
    first from a daemon that never read the object, then again."""
    from types import SimpleNamespace

    from dicomweb_daemon.plugins.builtin import s3_storage
    from dicomweb_daemon.storage import encryption

    section = s3_section(StorageEncryption={"Enable": True, "MasterKey": [1, write_key(tmp_path, "k")]})
    storage = s3_storage.open(SimpleNamespace(sections={"AwsS3Storage": section}))
    chunk = encryption.CHUNK
    content = os.urandom(20 * chunk + 1000)
    storage.write("00000000-0000-4000-8000-000000000001", "dicom", content)
    monkeypatch.setattr(encryption, "CHUNK", 4096)  # as sealed by a daemon with other chunks
    storage.write("00000000-0000-4000-8000-000000000002", "dicom", content)
    monkeypatch.undo()
    ranges = [(0, 10), (100, chunk + 50), (chunk - 1, chunk + 1), (20 * chunk + 10, 20 * chunk + 1000),
              (20 * chunk + 900, 22 * chunk), (len(content), len(content) + 10), (30 * chunk, 31 * chunk),
              (17 * chunk + 5, 19 * chunk), (3, 20 * chunk + 1000)]
    for uuid in ("00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"):
        for start, end in ranges:  # each first from a storage that never read the object, then again
            fresh = s3_storage.open(SimpleNamespace(sections={"AwsS3Storage": section}))
            assert fresh.read_range(uuid, "dicom", start, end) == content[start:end], (uuid, start, end)
            assert fresh.read_range(uuid, "dicom", start, end) == content[start:end], (uuid, start, end)
