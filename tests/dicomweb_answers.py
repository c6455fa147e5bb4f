"""What DICOMweb tests share: test files renamed with fresh UIDs, the URL of a resource, and the
parts of a multipart/related answer."""
from __future__ import annotations

import io
import re

import pydicom
import requests
from pydicom.uid import generate_uid

from tests.dicom_files import testdata


def renamed(name: str, study: str | None = None, series: str | None = None) -> tuple[bytes, pydicom.Dataset]:
    """A pydicom test file with fresh UIDs (several test files share theirs), in its own syntax."""
    ds = pydicom.dcmread(testdata(name))
    ds.StudyInstanceUID = study or generate_uid()
    ds.SeriesInstanceUID = series or generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue(), pydicom.dcmread(io.BytesIO(out.getvalue()))


def url_of(ds: pydicom.Dataset, level: str = "instance") -> str:
    """The DICOMweb URL of the study, series or instance ``ds`` belongs to."""
    path = f"/dicom-web/studies/{ds.StudyInstanceUID}"
    if level in ("series", "instance"):
        path += f"/series/{ds.SeriesInstanceUID}"
    if level == "instance":
        path += f"/instances/{ds.SOPInstanceUID}"
    return path


def parts(r: requests.Response) -> list[tuple[dict, bytes]]:
    """The parts of a 200 multipart/related answer: (headers with lower-case names, body)."""
    assert r.status_code == 200, r.text
    boundary = re.search(r'boundary="?([^";]+)"?', r.headers["Content-Type"]).group(1).encode()
    out = []
    for chunk in r.content.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, body = chunk.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode().strip().split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        out.append((headers, body[:-2] if body.endswith(b"\r\n") else body))
    return out
