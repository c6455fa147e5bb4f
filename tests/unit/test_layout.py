"""The frame table computed at ingest: byte ranges of each frame in the stored file."""
from __future__ import annotations

import io

import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless

from dicomweb_daemon.dicom.parsing import parse_buffer
from tests.dicom_files import make_ct, read


def stored(tmp_path, data: bytes) -> str:
    path = tmp_path / "f.dcm"
    path.write_bytes(data)
    return str(path)


def frames_of(path: str, table: list) -> list[bytes]:
    raw = open(path, "rb").read()
    return [b"".join(raw[o : o + n] for o, n in ranges) for ranges in table]


def test_native_frames_are_consecutive_slices(tmp_path):
    """A native multi-frame instance has one range per frame, Rows*Columns*2 bytes each."""
    ds = read(make_ct("L-1", size=16))
    ds.NumberOfFrames = 3
    ds.PixelData = bytes(range(256)) * 6  # 3 frames of 16*16*2 bytes
    out = io.BytesIO()
    ds.save_as(out)
    path = stored(tmp_path, out.getvalue())
    parsed = parse_buffer(open(path, "rb").read())
    assert parsed.number_of_frames == 3
    assert frames_of(path, parsed.frames) == [ds.PixelData[i * 512 : (i + 1) * 512] for i in range(3)]


@pytest.mark.parametrize("fragments, bot", [(1, False), (1, True), (3, True)])
def test_encapsulated_frames_follow_fragments_and_offset_table(tmp_path, fragments, bot):
    """Encapsulated frames are found with one fragment each, or grouped by the Basic Offset Table."""
    ds = read(make_ct("L-2", size=16))
    frames = [bytes([i]) * (30 * fragments) for i in range(1, 5)]
    ds.NumberOfFrames = len(frames)
    ds.PixelData = encapsulate(frames, fragments_per_frame=fragments, has_bot=bot)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    path = stored(tmp_path, out.getvalue())
    parsed = parse_buffer(open(path, "rb").read())
    assert len(parsed.frames) == 4
    assert frames_of(path, parsed.frames) == frames
    assert parsed.pixel_data_offset is not None
