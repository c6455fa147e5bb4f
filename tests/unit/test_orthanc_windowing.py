"""Orthanc's /rendered windowing (dicomweb_daemon.codecs.orthanc.rendered) on the values where its
single-precision arithmetic and the textbook formula part: the grey levels below are those Orthanc
1.10.1 answered for the same stored values, rescales and windows (observed on generated images)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset

from dicomweb_daemon.codecs import orthanc
from dicomweb_daemon.codecs.frames import open_image


def _ct(intercept: float, window: tuple[float, float] | None = None, slope: float = 1) -> io.BytesIO:
    """A 64x64 12-bit CT holding every stored value 0..4095, rescaled and windowed as given."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = uid.CTImageStorage, uid.generate_uid()
    ds.Rows = ds.Columns = 64
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = np.arange(4096, dtype=np.uint16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    out.seek(0)
    return out


#: (intercept, file window, asked window, {stored value: Orthanc's grey level})
OBSERVED = [
    (-1024, (200, 800), None, {1623: 254, 1624: 254, 1625: 255, 823: 0, 824: 0, 825: 0}),
    (-1024, (40, 400), None, {1264: 255, 1263: 254}),
    (-1024, (40, 1500), None, {414: 16, 514: 33}),
    (-1000, (2048, 800), None, {3288: 203, 3448: 254}),
    (-1024, None, (0.2, 0.5), {1023: 0, 1024: 76, 1025: 255}),  # narrower than 1: taken as 1 wide
    (-1024, None, (0.2, 1.5), {1024: 93}),
]


@pytest.mark.parametrize("intercept, file_window, asked, expected", OBSERVED)
def test_rendered_grey_levels_are_orthancs(intercept, file_window, asked, expected):
    """The window's top value can be 254 (200/800) or 255 (40/400), as Orthanc's single-precision
    multiply-add gives them; a window narrower than 1 is 1 wide."""
    image = open_image(_ct(intercept, file_window))
    grey = orthanc.rendered(image, 0, asked).ravel()
    assert {value: int(grey[value]) for value in expected} == expected


def test_rendered_without_a_window_spans_bits_stored():
    """Without a window, the range of BitsStored: c = 2048, w = 4096 for 12 bits (on modality values)."""
    grey = orthanc.rendered(open_image(_ct(0)), 0).ravel()
    assert grey[0] == 0 and grey[4095] == 254 and grey[2048] == 127
    assert np.all(np.diff(grey.astype(int)) >= 0)


def test_wado_uri_image_is_the_rendered_frame():
    """WADO-URI's PNG is /rendered's PNG byte for byte; its window, region and size apply on top."""
    image = open_image(_ct(-1024, (200, 800)))
    assert orthanc.wado_uri(image, 0, "image/png") == orthanc.encode(orthanc.rendered(image, 0), "image/png")
    windowed = orthanc.wado_uri(image, 0, "image/png", window=(40, 400))
    assert windowed == orthanc.encode(orthanc.rendered(image, 0, (40, 400)), "image/png")
    from PIL import Image

    small = Image.open(io.BytesIO(orthanc.wado_uri(image, 0, "image/png", viewport=(16, 16), region=(0, 0, 0.5, 1))))
    assert small.size == (8, 16)
