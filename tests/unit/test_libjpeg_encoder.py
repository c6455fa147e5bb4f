"""JPEG extended 12-bit (.51) and lossless JPEG (.57, .70) encoding by libjpeg-turbo: lossless
frames come back bit for bit through pydicom's decoders and ours, lossy frames say so in their
pixel module, and what a JPEG process cannot hold is refused (CannotEncode, answered 406)."""
from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.dataset import Dataset, FileMetaDataset

from dicomweb_daemon import codecs
from dicomweb_daemon.codecs.errors import CannotEncode, NoEncoder
from dicomweb_daemon.codecs.frames import decode_frame
from dicomweb_daemon.codecs.libjpeg_encoder import even_length, extended_sof

LOSSLESS_JPEG = [uid.JPEGLossless, uid.JPEGLosslessSV1]


def _image(values: np.ndarray, bits_stored: int, photometric: str = "MONOCHROME2") -> Dataset:
    """A secondary capture holding ``values`` natively, with the pixel module they need."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = uid.SecondaryCaptureImageStorage, uid.generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid.generate_uid(), uid.generate_uid()
    ds.Rows, ds.Columns = values.shape[:2]
    ds.SamplesPerPixel = 3 if values.ndim == 3 else 1
    ds.PhotometricInterpretation = photometric
    if values.ndim == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = values.dtype.itemsize * 8, bits_stored, bits_stored - 1
    ds.PixelRepresentation = int(values.dtype.kind == "i")
    ds.PixelData = values.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    return ds


def _file(ds: Dataset) -> io.BytesIO:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    out.seek(0)
    return out


def _texture(dtype, low: int, high: int, shape=(48, 72)) -> np.ndarray:
    """Values over the whole range ``low..high``, with edges (so that every predictor has work)."""
    index = np.indices(shape)
    y, x, z = index[0], index[1], index[2] if len(shape) == 3 else 0
    span = high - low + 1
    return ((((x * 7919 + y * 104729 + z * 1299709) ^ (x * y * 31)) % span) + low).astype(dtype)


def _markers(codestream: bytes) -> dict[int, bytes]:
    """The header segments of a JPEG codestream, up to its start of scan (ITU T.81 §B.1.1.2)."""
    found, i = {}, 2
    while i + 4 <= len(codestream):
        marker, length = codestream[i + 1], int.from_bytes(codestream[i + 2:i + 4], "big")
        found.setdefault(marker, codestream[i + 4:i + 2 + length])
        if marker == 0xDA:
            break
        i += 2 + length
    return found


CASES = {
    "unsigned 8": (_texture(np.uint8, 0, 255), 8),
    "unsigned 7 of 8": (_texture(np.uint8, 0, 127), 7),
    "signed 8": (_texture(np.int8, -128, 127), 8),
    "unsigned 12 of 16": (_texture(np.uint16, 0, 4095), 12),
    "signed 12 of 16": (_texture(np.int16, -2048, 2047), 12),
    "unsigned 16": (_texture(np.uint16, 0, 65535), 16),
    "signed 16": (_texture(np.int16, -32768, 32767), 16),
}


@pytest.mark.parametrize("target", LOSSLESS_JPEG)
@pytest.mark.parametrize("case", list(CASES))
def test_lossless_jpeg_is_bit_exact(case, target):
    """Greyscale samples of 7 to 16 bits, signed or not, written as .57 or .70 and read back by
    pydicom (pylibjpeg) and by our decoders, are the very values; the file says lossless."""
    values, bits_stored = CASES[case]
    ds = _image(values, bits_stored)
    written = pydicom.dcmread(io.BytesIO(codecs.transcode_file(_file(ds), target)))
    assert written.file_meta.TransferSyntaxUID == target
    assert "LossyImageCompression" not in written and written.BitsStored == bits_stored
    assert np.array_equal(written.pixel_array, values), case
    frame = next(pydicom.encaps.generate_frames(written.PixelData, number_of_frames=1))
    got, _ = decode_frame(written, frame, target)
    assert got.dtype == values.dtype and np.array_equal(got, values), case


@pytest.mark.parametrize("target", LOSSLESS_JPEG)
def test_lossless_jpeg_of_rgb_keeps_rgb(target):
    """8- and 16-bit RGB go without a colour transform: RGB stays RGB, every sample exact."""
    for values in (_texture(np.uint8, 0, 255, (40, 30, 3)), _texture(np.uint16, 0, 65535, (40, 30, 3))):
        ds = _image(values, values.dtype.itemsize * 8, "RGB")
        written = pydicom.dcmread(io.BytesIO(codecs.transcode_file(_file(ds), target)))
        assert written.PhotometricInterpretation == "RGB" and written.PlanarConfiguration == 0
        assert np.array_equal(written.pixel_array, values)


@pytest.mark.parametrize("target, predictor", [(uid.JPEGLossless, 6), (uid.JPEGLosslessSV1, 1)])
def test_lossless_codestream_is_process_14_with_its_predictor(target, predictor):
    """A lossless frame is SOF3 (ITU T.81 process 14) at BitsAllocated bits of precision; .70 uses
    selection value 1 (PS3.5 §10.4), .57 predictor 6 as Orthanc's DCMTK does; a greyscale
    component is sampled 1x1."""
    values, _ = CASES["unsigned 12 of 16"]
    ds = _image(values, 12)
    frame = codecs.transcode_frame(ds, ds.PixelData, uid.ExplicitVRLittleEndian, target)
    markers = _markers(frame)
    assert 0xC3 in markers and markers[0xC3][0] == 16
    assert markers[0xC3][5:9] == b"\x01\x01\x11\x00"  # one component, id 1, 1x1, no table
    assert markers[0xDA][3] == predictor  # Ss of the scan header: the predictor
    assert len(frame) % 2 == 0 and frame.endswith(b"\xff\xd9")


def test_jpeg_extended_holds_twelve_bits():
    """12-bit greyscale becomes a 12-bit extended DCT codestream (SOF1, P=12): lossy, said in the
    pixel module (ISO_10918_1 and its ratio), within a few levels of the source; 10 bits stored
    widen to 12, as the decoded samples may pass 1023."""
    for bits_stored in (12, 10):
        values = _texture(np.uint16, 0, (1 << bits_stored) - 1)
        values = np.clip(values // 8 * 8, 0, (1 << bits_stored) - 1).astype(np.uint16)  # smoother: lossy-friendly
        ds = _image(values, bits_stored)
        written = pydicom.dcmread(io.BytesIO(codecs.transcode_file(_file(ds), uid.JPEGExtended12Bit)))
        assert written.file_meta.TransferSyntaxUID == uid.JPEGExtended12Bit
        assert written.LossyImageCompression == "01" and written.LossyImageCompressionMethod == "ISO_10918_1"
        assert float(written.LossyImageCompressionRatio) > 1
        assert (written.BitsStored, written.HighBit) == (12, 11)
        frame = next(pydicom.encaps.generate_frames(written.PixelData, number_of_frames=1))
        assert _markers(frame)[0xC1][0] == 12
        got, _ = decode_frame(written, frame, uid.JPEGExtended12Bit)
        assert got.dtype == np.uint16 and np.abs(got.astype(int) - values.astype(int)).max() < 64
        # pydicom decodes with pylibjpeg-libjpeg, whose inverse DCT rounds its own way
        assert np.abs(written.pixel_array.astype(int) - got.astype(int)).max() <= 2


def test_jpeg_extended_of_eight_bits_is_baseline_labelled_sof1():
    """8-bit samples in .51 are the baseline scan under an extended start of frame (SOF1, P=8):
    the same bytes but that marker, colour as YBR_FULL_422."""
    grey = _image(_texture(np.uint8, 0, 255), 8)
    baseline = codecs.transcode_frame(grey, grey.PixelData, uid.ExplicitVRLittleEndian, uid.JPEGBaseline8Bit)
    extended = codecs.transcode_frame(grey, grey.PixelData, uid.ExplicitVRLittleEndian, uid.JPEGExtended12Bit)
    assert 0xC0 in _markers(baseline) and 0xC1 in _markers(extended) and 0xC0 not in _markers(extended)
    assert extended == extended_sof(baseline)
    rgb = _image(_texture(np.uint8, 0, 255, (32, 48, 3)) // 16 * 16, 8, "RGB")
    written = pydicom.dcmread(io.BytesIO(codecs.transcode_file(_file(rgb), uid.JPEGExtended12Bit)))
    assert written.PhotometricInterpretation == "YBR_FULL_422"
    assert _markers(next(pydicom.encaps.generate_frames(written.PixelData, number_of_frames=1)))[0xC1][7] == 0x21


@pytest.mark.parametrize("case, target", [("signed 12 of 16", uid.JPEGExtended12Bit),
                                          ("unsigned 16", uid.JPEGExtended12Bit),
                                          ("signed 8", uid.JPEGBaseline8Bit),
                                          ("unsigned 12 of 16", uid.JPEGBaseline8Bit)])
def test_what_lossy_jpeg_cannot_hold_is_refused(case, target):
    """Lossy JPEG has no sign and at most 12 bits (8 for baseline): such images are CannotEncode
    (a 406), never silently wrong pixels."""
    values, bits_stored = CASES[case]
    ds = _image(values, bits_stored)
    with pytest.raises(CannotEncode):
        codecs.transcode_file(_file(ds), target)


def test_lossless_jpeg_refuses_what_it_cannot_hold():
    """32-bit samples and YBR_FULL colour (lossless JPEG has no sign of its colour model) are refused."""
    with pytest.raises(CannotEncode):
        codecs.transcode_file(_file(_image(np.arange(64, dtype=np.uint32).reshape(8, 8), 32)), uid.JPEGLossless)
    with pytest.raises(CannotEncode):
        codecs.transcode_file(_file(_image(_texture(np.uint8, 0, 255, (8, 8, 3)), 8, "YBR_FULL")),
                              uid.JPEGLosslessSV1)


def test_odd_codestreams_get_a_fill_byte_before_eoi():
    """DICOM fragments are even (PS3.5 §A.4): an odd codestream gets 0xFF before EOI, which JPEG
    decoders skip (ITU T.81 §B.1.1.2)."""
    import imagecodecs

    assert even_length(b"\xff\xd8\x00\xff\xd9") == b"\xff\xd8\x00\xff\xff\xd9"
    assert even_length(b"\xff\xd8\xff\xd9") == b"\xff\xd8\xff\xd9"
    values = _texture(np.uint8, 0, 255)
    for predictor in range(1, 8):
        stream = imagecodecs.jpeg8_encode(values, lossless=True, predictor=predictor, bitspersample=8)
        if len(stream) % 2:
            assert np.array_equal(imagecodecs.jpeg8_decode(even_length(stream)), values)
            break
    else:
        pytest.fail("no odd codestream to test with")


def test_encoders_are_listed_and_preferred():
    """libjpeg-turbo's encoder writes .50, .51, .57 and .70 (before Pillow for .50)."""
    from dicomweb_daemon.codecs.registry import encodable, encoder_for

    for syntax in (uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLossless, uid.JPEGLosslessSV1):
        assert encoder_for(syntax).name == "imagecodecs-jpeg", syntax
        assert syntax in encodable()


def test_without_imagecodecs_only_pillow_baseline_is_left(monkeypatch):
    """Where imagecodecs is not installed, .51, .57 and .70 are NoEncoder (406) again and Pillow
    writes JPEG baseline."""
    from dicomweb_daemon.codecs import imagecodecs_codec, libjpeg_encoder
    from dicomweb_daemon.codecs.registry import encoder_for

    monkeypatch.setattr(imagecodecs_codec, "_module", lambda: None)
    monkeypatch.setattr(libjpeg_encoder, "_module", lambda: None)
    assert encoder_for(uid.JPEGBaseline8Bit).name == "pillow-jpeg"
    for syntax in (uid.JPEGExtended12Bit, uid.JPEGLossless, uid.JPEGLosslessSV1):
        with pytest.raises(NoEncoder):
            encoder_for(syntax)
