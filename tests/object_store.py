"""Object stores for the tests: moto's server (``moto[server]`` from PyPI, an emulator of S3, not
Amazon's S3) and Azurite (npm, Microsoft's emulator of Azure Blob Storage), each started once per
test process on a free loopback port, and a new bucket or container per daemon.

With ``DICOMWEB_TEST_STORAGE=s3`` every daemon the tests start keeps its files in its own bucket
(the CI's third pass runs the storage-facing tests so); unset, in its data folder.
"""
from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import requests

ACCESS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
_server: list[tuple[str, subprocess.Popen]] = []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serving(command: list[str], url: str, what: str) -> subprocess.Popen:
    """``command`` started (killed at exit), once ``url`` answers."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(proc.kill)
    deadline = time.time() + 30
    while True:
        try:
            requests.get(url, timeout=1)
            return proc
        except requests.ConnectionError:
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)


def start_server(port: int | None = None) -> tuple[str, subprocess.Popen]:
    """A new moto S3 server on ``port`` (a free one by default): its URL and process."""
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return url, _serving(command, url, "moto's S3 server")


def endpoint() -> str:
    """The URL of the tests' S3-API server, started at first use and stopped at exit."""
    if not _server or _server[0][1].poll() is not None:
        _server[:] = [start_server()]
    return _server[0][0]


def client(url: str | None = None):
    """A boto3 client of the tests' S3 server (what a test reads or plants in a bucket with)."""
    import boto3

    return boto3.client("s3", endpoint_url=url or endpoint(), **ACCESS)


def new_bucket(url: str | None = None, name: str | None = None) -> str:
    name = name or f"t-{uuid.uuid4().hex[:20]}"
    client(url).create_bucket(Bucket=name)
    return name


def s3_section(bucket: str | None = None, **extra) -> dict:
    """Orthanc's ``AwsS3Storage`` section for a (new) bucket on the tests' server."""
    return {"BucketName": bucket or new_bucket(), "Region": ACCESS["region_name"],
            "AccessKey": ACCESS["aws_access_key_id"], "SecretKey": ACCESS["aws_secret_access_key"],
            "Endpoint": endpoint(), "VirtualAddressing": False, "ConnectionTimeout": 5, "RequestTimeout": 30,
            **extra}


def objects(bucket: str) -> dict[str, bytes]:
    """Every object of a bucket: name -> content."""
    s3 = client()
    names = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
             for o in page.get("Contents", [])]
    return {name: s3.get_object(Bucket=bucket, Key=name)["Body"].read() for name in names}


def storage_config() -> dict:
    """The configuration that puts a test daemon's files in a bucket, or nothing (its data folder)."""
    if os.environ.get("DICOMWEB_TEST_STORAGE", "") != "s3":
        return {}
    return {"Backends": {"Storage": "s3"}, "AwsS3Storage": s3_section()}


# -- Azure Blob Storage: Azurite, Microsoft's emulator (npm), installed on first use -----------------
AZURITE_VERSION = "3.35.0"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="  # its
# well-known development account key
_azurite: list[tuple[str, subprocess.Popen]] = []


def azurite_binary() -> str:
    """Azurite's blob server, installed with npm into the user's cache folder when absent."""
    folder = os.path.join(os.path.expanduser("~"), ".cache", "dicomweb-daemon-tests", f"azurite-{AZURITE_VERSION}")
    binary = os.path.join(folder, "node_modules", ".bin", "azurite-blob")
    if not os.path.exists(binary):
        os.makedirs(folder, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", folder, "--no-audit", "--no-fund", f"azurite@{AZURITE_VERSION}"],
                       check=True, stdout=subprocess.DEVNULL)
    return binary


def azurite_connection_string() -> str:
    """The connection string of the tests' Azurite (started at first use, stopped at exit)."""
    if not _azurite or _azurite[0][1].poll() is not None:
        port = _free_port()
        folder = tempfile.mkdtemp(prefix="dicomweb-azurite-")
        atexit.register(shutil.rmtree, folder, True)
        url = f"http://127.0.0.1:{port}/devstoreaccount1"
        command = [azurite_binary(), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", folder,
                   "--skipApiVersionCheck", "--silent"]
        _azurite[:] = [(url, _serving(command, url, "Azurite"))]
    return (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={_azurite[0][0]};")


def new_container() -> str:
    from azure.storage.blob import BlobServiceClient

    name = f"t-{uuid.uuid4().hex[:20]}"
    BlobServiceClient.from_connection_string(azurite_connection_string()).create_container(name)
    return name


def blobs(container: str) -> dict[str, bytes]:
    """Every blob of a container: name -> content."""
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite_connection_string()).get_container_client(container)
    return {b.name: service.download_blob(b.name).readall() for b in service.list_blobs()}
