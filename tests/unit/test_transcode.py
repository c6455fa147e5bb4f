"""Transcoding (dicomweb_daemon.codecs) against pydicom's own decoding of its test files."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate

from dicomweb_daemon import codecs
from dicomweb_daemon.codecs.errors import CannotEncode, CodecError, CorruptPixelData, ImageTooLarge, NoEncoder
from tests.dicom_files import eight_bit_image

LOSSY = {uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLSNearLossless, uid.JPEG2000, uid.HTJ2K}
LOSSLESS_TARGETS = [uid.RLELossless, uid.JPEGLSLossless, uid.JPEG2000Lossless, uid.JPEGLossless, uid.JPEGLosslessSV1]
MAX_TEST_BYTES = 4 << 20  # keeps the sweep quick on a shared machine


def _images() -> list[tuple[str, Dataset, np.ndarray]]:
    """Every pydicom test file whose pixels pydicom itself decodes, with that reference array."""
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in sorted(get_testdata_files("*")):
            try:
                ds = pydicom.dcmread(path)
                if "PixelData" not in ds or "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
                    continue
                reference = ds.pixel_array
            except Exception:  # noqa: BLE001 - files pydicom cannot decode are not references
                continue
            if reference.nbytes <= MAX_TEST_BYTES:
                found.append((path, ds, reference))
    return found


IMAGES = _images()
LOSSLESS = [i for i in IMAGES if i[1].file_meta.TransferSyntaxUID not in LOSSY]
LOSSY_FILES = [i for i in IMAGES if i[1].file_meta.TransferSyntaxUID in LOSSY]


def _name(item) -> str:
    return item[0].rsplit("/", 1)[-1]


def _decoded(data: bytes) -> tuple[Dataset, np.ndarray]:
    ds = pydicom.dcmread(io.BytesIO(data))
    return ds, ds.pixel_array


def _encodable(ds: Dataset, target: str) -> bool:
    # RLE, JPEG-LS and JPEG 2000 hold 8 or 16 bits; CharLS refuses images of a few pixels; lossless
    # JPEG holds one sample per pixel and RGB (no colour transform), not YBR_FULL.
    if int(ds.BitsAllocated) not in (8, 16) or int(ds.Rows) < 8 or int(ds.Columns) < 8:
        return False
    if target in (uid.JPEGLossless, uid.JPEGLosslessSV1):
        photometric = str(ds.PhotometricInterpretation)
        return int(ds.SamplesPerPixel) == 1 or photometric == "RGB"
    return True


def test_sweep_is_not_empty():
    """pydicom's test data gives the sweeps below dozens of lossless and lossy images."""
    assert len(LOSSLESS) > 40 and len(LOSSY_FILES) > 10


@pytest.mark.parametrize("item", LOSSLESS, ids=_name)
def test_lossless_round_trip_is_bit_exact(item):
    """Each lossless file decoded, re-encoded losslessly (native, RLE, JPEG-LS, JPEG 2000, lossless
    JPEG .57 and .70) and decoded again by pydicom gives exactly pydicom's pixel_array; only what the
    codec cannot hold is refused (406)."""
    path, ds, reference = item
    for target in [uid.ExplicitVRLittleEndian, *LOSSLESS_TARGETS]:
        try:
            out = codecs.transcode_file(path, target)
        except CannotEncode:
            assert target != uid.ExplicitVRLittleEndian and not _encodable(ds, target), (path, target)
            continue
        written, got = _decoded(out)
        assert written.file_meta.TransferSyntaxUID == target
        assert got.shape == reference.shape and np.array_equal(got, reference), (path, target)


@pytest.mark.parametrize("item", LOSSY_FILES, ids=_name)
def test_lossy_sources_decode_like_pydicom(item):
    """A lossy file transcoded to explicit little endian holds what pydicom decodes from it: exactly,
    except DCT JPEG, which libjpeg-turbo decodes (its inverse DCT and its own YCbCr conversion, as
    DCMTK's libjpeg: see the next test), a few levels away from pydicom's decoders at most."""
    path, ds, reference = item
    _, got = _decoded(codecs.transcode_file(path, uid.ExplicitVRLittleEndian))
    if ds.file_meta.TransferSyntaxUID in (uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit):
        assert got.shape == reference.shape and got.dtype == reference.dtype
        assert np.abs(got.astype(int) - reference.astype(int)).max() <= 8
    else:
        assert np.array_equal(got, reference)


@pytest.mark.parametrize("name", ["SC_rgb_dcmtk_+eb+cy+np.dcm", "color3d_jpeg_baseline.dcm"])
def test_dct_jpeg_decodes_as_libjpeg(name):
    """8-bit DCT JPEG frames decode to the pixels libjpeg gives (Pillow's decoding of the same
    codestream, YCbCr converted to RGB by libjpeg): what Orthanc shows, through DCMTK's libjpeg."""
    from PIL import Image

    from dicomweb_daemon.codecs.frames import open_image

    path = get_testdata_file(name)
    image = open_image(path)
    assert image.transfer_syntax == uid.JPEGBaseline8Bit and image.px["photometric"] == "YBR_FULL_422"
    for index in range(min(image.frames, 3)):
        got, changes = image.decode(index)
        expected = np.asarray(Image.open(io.BytesIO(image.frame(index))).convert("RGB"))
        assert np.array_equal(got, expected), (name, index)
        assert changes["PhotometricInterpretation"] == "RGB"


def test_twelve_bit_dct_jpeg_decodes():
    """A 12-bit DCT JPEG (JPEG Extended) that neither pylibjpeg-libjpeg (it rejects its scan header)
    nor Pillow (no 12-bit samples) decodes, decodes through libjpeg-turbo."""
    from dicomweb_daemon.codecs.frames import open_image

    path = get_testdata_file("JPEG-lossy.dcm")
    image = open_image(path)
    assert image.transfer_syntax == uid.JPEGExtended12Bit
    got, _ = image.decode(0)
    assert got.dtype == np.uint16 and got.shape == (image.px["rows"], image.px["columns"])
    assert 0 < int(got.max()) < 4096


def test_ybr_full_422_jpeg_becomes_rgb():
    """A YBR_FULL_422 JPEG decoded to a native syntax is labelled RGB, planar configuration 0."""
    path = get_testdata_file("SC_rgb_dcmtk_+eb+cy+np.dcm")
    assert pydicom.dcmread(path).PhotometricInterpretation == "YBR_FULL_422"
    written, got = _decoded(codecs.transcode_file(path, uid.ExplicitVRLittleEndian))
    assert written.PhotometricInterpretation == "RGB" and written.PlanarConfiguration == 0
    assert np.array_equal(got, _libjpeg_rgb(path))


def _libjpeg_rgb(path: str) -> np.ndarray:
    """The first frame of a JPEG baseline file as libjpeg decodes it to RGB (through Pillow)."""
    from PIL import Image

    ds = pydicom.dcmread(path)
    frame = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    return np.asarray(Image.open(io.BytesIO(frame)).convert("RGB"))


def test_planar_configuration_1_becomes_0():
    """Colour planes stored separately (PlanarConfiguration 1) are interleaved when re-encoded."""
    path = get_testdata_file("SC_rgb_rle.dcm")  # RLE keeps one segment per sample: planar by nature
    written, got = _decoded(codecs.transcode_file(path, uid.ExplicitVRLittleEndian))
    assert written.PlanarConfiguration == 0
    assert np.array_equal(got, pydicom.dcmread(path).pixel_array)


def test_lossy_jpeg2000_reports_its_ratio():
    """A lossy encode sets LossyImageCompression 01, the method and the achieved ratio (PS3.3 C.7.6.1.1.5)."""
    path = get_testdata_file("CT_small.dcm")
    written, got = _decoded(codecs.transcode_file(path, uid.JPEG2000))
    assert written.LossyImageCompression == "01"
    assert written.LossyImageCompressionMethod == "ISO_15444_1"
    fragment = next(pydicom.encaps.generate_frames(written.PixelData, number_of_frames=1))
    actual = 128 * 128 * 2 / len(fragment)
    assert float(written.LossyImageCompressionRatio) == pytest.approx(actual, rel=0.01)
    reference = pydicom.dcmread(path).pixel_array.astype(float)
    assert 0 < np.abs(got - reference).max() < 200


def test_lossy_history_is_appended():
    """Re-encoding an already lossy image lossily appends a second ratio and method."""
    path = get_testdata_file("SC_rgb_jpeg_dcmtk.dcm")
    written, _ = _decoded(codecs.transcode_file(path, uid.JPEG2000))
    assert list(written.LossyImageCompressionMethod) == ["ISO_10918_1", "ISO_15444_1"]
    assert len(written.LossyImageCompressionRatio) == 2


def test_jpeg_baseline_from_8bit_rgb():
    """8-bit RGB encodes as JPEG baseline (Pillow), labelled YBR_FULL_422, close to the source."""
    path = get_testdata_file("SC_rgb.dcm")
    written, got = _decoded(codecs.transcode_file(path, uid.JPEGBaseline8Bit))
    assert written.PhotometricInterpretation == "YBR_FULL_422"
    assert written.LossyImageCompressionMethod == "ISO_10918_1"
    reference = pydicom.dcmread(path).pixel_array.astype(int)
    assert np.abs(got.astype(int) - reference).max() <= 16


def test_jpeg_baseline_refuses_16bit():
    """JPEG baseline holds 8 bits only: a 16-bit CT is refused (CannotEncode, a 406), not a 500."""
    with pytest.raises(CannotEncode):
        codecs.transcode_file(get_testdata_file("CT_small.dcm"), uid.JPEGBaseline8Bit)


def test_unknown_target_syntax_is_not_acceptable():
    """A transfer syntax no codec writes is refused (NoEncoder, a 406) naming the encodable ones."""
    with pytest.raises(NoEncoder) as e:
        codecs.transcode_file(get_testdata_file("CT_small.dcm"), uid.HTJ2KLossless)
    assert uid.JPEG2000Lossless in e.value.details


def test_frame_transcoding_matches_file_transcoding():
    """transcode_frame of each stored frame equals the frames of the whole-file transcode."""
    path = get_testdata_file("emri_small_jpeg_2k_lossless.dcm")
    ds = pydicom.dcmread(path)
    frames = list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))
    reference = ds.pixel_array
    for index, frame in enumerate(frames):
        out = codecs.transcode_frame(ds, frame, uid.JPEG2000Lossless, uid.ExplicitVRLittleEndian)
        got = np.frombuffer(out, dtype="<u2" if ds.PixelRepresentation == 0 else "<i2").reshape(ds.Rows, ds.Columns)
        assert np.array_equal(got, reference[index])
    again = codecs.transcode_frame(ds, codecs.transcode_frame(ds, frames[0], uid.JPEG2000Lossless,
                                                               uid.ExplicitVRLittleEndian),
                                   uid.ExplicitVRLittleEndian, uid.JPEGLSLossless)
    assert again[:2] == b"\xff\xd8"


def test_can_transcode():
    """can_transcode says yes for decodable-to-encodable pairs and no when nothing encodes the target."""
    assert codecs.can_transcode(uid.JPEG2000Lossless, uid.ExplicitVRLittleEndian)
    assert codecs.can_transcode(uid.ExplicitVRLittleEndian, uid.RLELossless)
    assert codecs.can_transcode(uid.ExplicitVRLittleEndian, uid.JPEGLossless)
    assert not codecs.can_transcode(uid.ExplicitVRLittleEndian, uid.HTJ2KLossless)
    assert uid.HTJ2KLossless in codecs.decodable_syntaxes()
    assert uid.JPEGLSLossless in codecs.encodable_syntaxes()


def test_absurd_dimensions_are_refused_before_decoding():
    """A header announcing 60000x60000x1000 pixels is refused (400) without allocating them."""
    data = io.BytesIO(eight_bit_image(60000, 60000, b"\0" * 64, frames=1000))
    with pytest.raises(ImageTooLarge):
        codecs.transcode_file(data, uid.RLELossless)
    with pytest.raises(ImageTooLarge):
        codecs.transcode_file(io.BytesIO(data.getvalue()), uid.ExplicitVRBigEndian)


def test_short_pixel_data_is_refused():
    """Native pixel data shorter than Rows x Columns x frames is a 400, not a crash or garbage."""
    with pytest.raises(CorruptPixelData) as e:
        codecs.transcode_file(io.BytesIO(eight_bit_image(64, 64, b"\0" * 4096, frames=2)), uid.RLELossless)
    assert "8192" in e.value.details
    with pytest.raises(CorruptPixelData):
        codecs.render(io.BytesIO(eight_bit_image(64, 64, b"\0" * 4096, frames=2)), 2)


def test_decompression_bomb_is_refused():
    """A JPEG 2000 frame whose codestream is far larger than the header says is refused before decoding."""
    from pydicom.pixels import get_encoder

    big = (np.arange(512 * 512) % 251).astype(np.uint8).reshape(512, 512)
    stream = get_encoder(uid.JPEG2000Lossless).encode(
        big, rows=512, columns=512, samples_per_pixel=1, bits_allocated=8, bits_stored=8,
        pixel_representation=0, photometric_interpretation="MONOCHROME2", number_of_frames=1)
    bomb = eight_bit_image(16, 16, encapsulate([stream]), uid.JPEG2000Lossless, frames=1)
    with pytest.raises(CorruptPixelData) as e:
        codecs.transcode_file(io.BytesIO(bomb), uid.ExplicitVRLittleEndian)
    assert "512x512" in e.value.details


def test_truncated_file_from_pydicom_is_refused():
    """pydicom's MR_truncated.dcm (pixel data cut short) is refused with a 400 by transcode and render."""
    path = get_testdata_file("MR_truncated.dcm")
    with pytest.raises(CorruptPixelData):
        codecs.transcode_file(path, uid.RLELossless)
    with pytest.raises(CorruptPixelData):
        codecs.render(path)


def test_codecs_are_plugins():
    """The built-in codecs are ICodec dropins that twisted.plugin discovers and zope.interface verifies."""
    from dicomweb_daemon.interfaces import ICodec
    from dicomweb_daemon.registry import discover

    found = discover(ICodec)
    assert {"native", "pydicom", "rle", "jpeg-ls", "jpeg-2000", "pillow-jpeg"} <= set(found)


@pytest.mark.parametrize("target", [uid.ImplicitVRLittleEndian, uid.DeflatedExplicitVRLittleEndian,
                                    uid.ExplicitVRBigEndian])
@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "SC_rgb_jpeg_gdcm.dcm", "emri_small_jpeg_ls_lossless.dcm",
                                  "SC_rgb_expb_16bit_2frame.dcm", "OBXXXX1A_expb_2frame.dcm"])
def test_native_targets_keep_every_pixel(name, target):
    """Implicit VR, deflated and big endian targets hold exactly pydicom's pixels (byte order included)."""
    path = get_testdata_file(name)
    written, got = _decoded(codecs.transcode_file(path, target))
    assert written.file_meta.TransferSyntaxUID == target
    assert np.array_equal(got, pydicom.dcmread(path).pixel_array)


def test_jpeg_baseline_from_8bit_greyscale():
    """8-bit greyscale encodes as a greyscale JPEG baseline, MONOCHROME2 kept, close to the source."""
    path = get_testdata_file("image_dfl.dcm")
    written, got = _decoded(codecs.transcode_file(path, uid.JPEGBaseline8Bit))
    assert written.PhotometricInterpretation == "MONOCHROME2"
    reference = pydicom.dcmread(path).pixel_array.astype(int)
    assert np.abs(got.astype(int) - reference).mean() < 3


def test_frame_changes_are_reported():
    """transcode_frame_ex says which pixel attributes the new frame needs (YBR_FULL_422 JPEG -> RGB)."""
    path = get_testdata_file("SC_rgb_dcmtk_+eb+cy+np.dcm")
    ds = pydicom.dcmread(path)
    frame = next(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=1))
    data, changes = codecs.transcode_frame_ex(ds, frame, uid.JPEGBaseline8Bit, uid.ExplicitVRLittleEndian)
    assert changes["PhotometricInterpretation"] == "RGB" and changes["PlanarConfiguration"] == 0
    assert ds.PhotometricInterpretation == "YBR_FULL_422"  # the caller's header is left alone
    assert np.array_equal(np.frombuffer(data, np.uint8).reshape(ds.Rows, ds.Columns, 3), _libjpeg_rgb(path))


def test_non_image_changes_only_its_syntax():
    """An instance without pixel data (an RT plan) can be sent in any syntax: only the UID changes."""
    path = get_testdata_file("rtplan.dcm")
    written = pydicom.dcmread(io.BytesIO(codecs.transcode_file(path, uid.JPEG2000Lossless)))
    original = pydicom.dcmread(path)
    assert written.file_meta.TransferSyntaxUID == uid.JPEG2000Lossless
    assert written.RTPlanLabel == original.RTPlanLabel and "PixelData" not in written


# -- direct decoding and rendering through the stored JSON and frame table ---------------------

DIRECT = [i for i in IMAGES if i[1].file_meta.TransferSyntaxUID in
          (uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian, uid.JPEGLSLossless, uid.JPEGLSNearLossless,
           uid.JPEG2000Lossless, uid.JPEG2000)]


def _frames_of(path: str):
    from dicomweb_daemon.codecs.frames import open_image

    image = open_image(path)
    return image, [image.frame(i) for i in range(min(image.frames, 2))]


@pytest.mark.parametrize("item", DIRECT, ids=_name)
def test_direct_decoding_matches_pydicom(item):
    """Greyscale native, JPEG-LS and JPEG 2000 frames decoded by the codec library itself equal
    pydicom's pixel_array (dtype too), or are left to pydicom (None)."""
    from dicomweb_daemon.codecs.direct import decode_grey
    from dicomweb_daemon.codecs.providers import header_options

    path, ds, reference = item
    image, frames = _frames_of(path)
    opts = header_options(image.header())
    for index, frame in enumerate(frames):
        got = decode_grey(frame, image.transfer_syntax, opts)
        if got is None:
            # Left to pydicom: colour or palette, other sample sizes, a JPEG 2000 sign mismatch.
            grey = opts["photometric_interpretation"] in ("MONOCHROME1", "MONOCHROME2")
            j2k = image.transfer_syntax in (uid.JPEG2000Lossless, uid.JPEG2000)
            assert not grey or opts["bits_allocated"] not in (8, 16) or j2k, path
            continue
        expected = reference[index] if image.frames > 1 else reference
        assert got.dtype == expected.dtype and np.array_equal(got, expected), (path, index)


def test_direct_decoding_takes_the_common_files():
    """The direct path is not dead: most greyscale JPEG-LS, JPEG 2000 and native test files take it."""
    from dicomweb_daemon.codecs.direct import decode_grey
    from dicomweb_daemon.codecs.providers import header_options

    taken = set()
    for path, ds, _ in DIRECT:
        image, frames = _frames_of(path)
        if decode_grey(frames[0], image.transfer_syntax, header_options(image.header())) is not None:
            taken.add(str(ds.file_meta.TransferSyntaxUID))
    assert {uid.ExplicitVRLittleEndian, uid.JPEGLSLossless, uid.JPEG2000Lossless} <= taken


def _signed_ct() -> tuple[Dataset, np.ndarray]:
    """A signed 12-bit CT whose values span -2048..2047 (BitsStored < BitsAllocated)."""
    values = ((np.arange(64 * 64) % 4096) - 2048).astype(np.int16).reshape(64, 64)
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = uid.CTImageStorage, uid.generate_uid()
    ds.Rows = ds.Columns = 64
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 1
    ds.PixelData = values.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    return ds, values


@pytest.mark.parametrize("target", [uid.JPEGLSLossless, uid.JPEG2000Lossless])
def test_signed_twelve_bit_frames_decode_directly_with_their_sign(target):
    """A signed 12-bit frame in JPEG-LS (which has no sign) or JPEG 2000 decodes directly to the
    original negative values (PS3.5 §8.2.3: sign-extended from the precision)."""
    from dicomweb_daemon.codecs.direct import decode_grey
    from dicomweb_daemon.codecs.providers import header_options

    ds, values = _signed_ct()
    frame = codecs.transcode_frame(ds, ds.PixelData, uid.ExplicitVRLittleEndian, target)
    got = decode_grey(frame, target, header_options(ds))
    assert got is not None and got.dtype == np.int16 and np.array_equal(got, values)


def test_native_unused_high_bits_are_ignored_like_pydicom():
    """Native frames whose bits above BitsStored are not zero decode as pydicom does (sign-filled
    when signed): mlut_18.dcm stores 12 signed bits in 16."""
    from dicomweb_daemon.codecs.direct import decode_grey
    from dicomweb_daemon.codecs.providers import header_options

    path = get_testdata_file("mlut_18.dcm")
    image, frames = _frames_of(path)
    raw = np.frombuffer(frames[0], dtype="<i2")
    got = decode_grey(frames[0], image.transfer_syntax, header_options(image.header()))
    assert got is not None and not np.array_equal(got.ravel(), raw)  # the high bits were not clean
    assert np.array_equal(got, pydicom.dcmread(path).pixel_array)


def _ingestible(path: str) -> bool:
    """Ingest accepts the file (those it refuses are never rendered from the stored JSON)."""
    from dicomweb_daemon.dicom.parsing import parse_buffer
    from dicomweb_daemon.errors import DaemonError

    try:
        parse_buffer(open(path, "rb").read())
    except DaemonError:
        return False
    return True


RENDERABLE = [i for i in IMAGES if i[1].file_meta.TransferSyntaxUID not in
              (uid.ExplicitVRBigEndian, uid.DeflatedExplicitVRLittleEndian) and _ingestible(i[0])]


@pytest.mark.parametrize("item", RENDERABLE, ids=_name)
def test_stored_rendering_equals_file_rendering(item):
    """Rendering through the JSON and frame table computed at ingest gives the very bytes of
    rendering from the parsed file (PNG, with and without a window, every frame asked)."""
    import zlib

    from dicomweb_daemon.codecs.render import render
    from dicomweb_daemon.codecs.stored import render_stored
    from dicomweb_daemon.dicom.parsing import parse_buffer

    path = item[0]
    parsed = parse_buffer(open(path, "rb").read())
    blob = zlib.compress(parsed.metadata_json)
    for options in ({"media_type": "image/png"}, {"media_type": "image/png", "window": (40, 400)}):
        try:
            expected = render(path, 1, **options)
        except CodecError as e:
            expected = type(e)
        try:
            got = render_stored(path, parsed.frames, parsed.transfer_syntax, blob, 1, key=None, **options)
        except CodecError as e:
            got = type(e)
        assert got == expected, path


def test_stored_rendering_falls_back_to_the_file_when_the_json_is_not_enough():
    """Enhanced images (functional groups) and palette images are read from the file; a plain CT,
    a JPEG-LS and a JPEG 2000 image are not."""
    import zlib

    from dicomweb_daemon.codecs.stored import stored_image
    from dicomweb_daemon.dicom.parsing import parse_buffer

    def image_of(name: str):
        path = get_testdata_file(name)
        parsed = parse_buffer(open(path, "rb").read())
        return stored_image(path, parsed.frames, parsed.transfer_syntax, zlib.compress(parsed.metadata_json))

    for name in ("CT_small.dcm", "emri_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"):
        assert image_of(name) is not None, name
    for name in ("eCT_Supplemental.dcm", "OBXXXX1A.dcm"):
        assert image_of(name) is None, name


# -- imagecodecs: the preferred JPEG 2000 / JPEG-LS decoder --------------------------------------

COMPRESSED = [i for i in IMAGES if i[1].file_meta.TransferSyntaxUID in
              (uid.JPEGLSLossless, uid.JPEGLSNearLossless, uid.JPEG2000Lossless, uid.JPEG2000, uid.JPEGLossless,
               uid.JPEGLosslessSV1)]


def test_imagecodecs_is_the_decoder_of_jpeg_2000_and_jpeg_ls():
    """With imagecodecs installed, its provider is discovered and decodes JPEG 2000, JPEG-LS and
    lossless JPEG before the pydicom decoders; pylibjpeg-openjpeg stays the decoder of HTJ2K."""
    from dicomweb_daemon.codecs.registry import decoder_for

    for syntax in (uid.JPEG2000Lossless, uid.JPEG2000, uid.JPEGLSLossless, uid.JPEGLSNearLossless,
                   uid.JPEGLossless, uid.JPEGLosslessSV1):
        assert decoder_for(syntax).name == "imagecodecs", syntax
    assert decoder_for(uid.HTJ2KLossless).name == "pydicom"


@pytest.mark.parametrize("item", COMPRESSED, ids=_name)
def test_imagecodecs_decoding_is_bit_exact(item):
    """Every JPEG 2000, JPEG-LS and lossless JPEG test file decoded by the imagecodecs provider equals
    pydicom's pixel_array (dtype and every sample); the frames it takes itself (greyscale) equal it too."""
    from dicomweb_daemon.codecs.direct import decode_grey
    from dicomweb_daemon.codecs.imagecodecs_codec import ImagecodecsDecoders, jpeg2k, jpeg_lossless, jpegls
    from dicomweb_daemon.codecs.providers import header_options

    path, ds, reference = item
    image, frames = _frames_of(path)
    opts = header_options(image.header())
    for index, frame in enumerate(frames):
        expected = reference[index] if image.frames > 1 else reference
        got, _ = ImagecodecsDecoders().decode_frame(image.header(), frame, image.transfer_syntax)
        assert got.dtype == expected.dtype and np.array_equal(got, expected), (path, index)
        direct = decode_grey(frame, image.transfer_syntax, opts, j2k=jpeg2k, jls=jpegls, ljpeg=jpeg_lossless)
        if direct is not None:
            assert direct.dtype == expected.dtype and np.array_equal(direct, expected), (path, index)


def test_imagecodecs_takes_the_greyscale_files():
    """The imagecodecs path is not dead: greyscale JPEG 2000, JPEG-LS and lossless JPEG files are
    decoded by it."""
    from dicomweb_daemon.codecs.direct import decode_grey
    from dicomweb_daemon.codecs.imagecodecs_codec import jpeg2k, jpeg_lossless, jpegls
    from dicomweb_daemon.codecs.providers import header_options

    taken = set()
    for path, ds, _ in COMPRESSED:
        image, frames = _frames_of(path)
        if decode_grey(frames[0], image.transfer_syntax, header_options(image.header()), j2k=jpeg2k,
                       jls=jpegls, ljpeg=jpeg_lossless) is not None:
            taken.add(str(ds.file_meta.TransferSyntaxUID))
    assert {uid.JPEG2000Lossless, uid.JPEG2000, uid.JPEGLSLossless, uid.JPEGLosslessSV1} <= taken


@pytest.mark.parametrize("syntax", [uid.JPEGLossless, uid.JPEGLosslessSV1])
def test_signed_lossless_jpeg_decodes_like_pydicom(syntax):
    """A signed 12-bit CT stored as lossless JPEG (which has no sign, ITU T.81 process 14) decodes
    through libjpeg-turbo to pydicom's pixel_array: the original negative values, int16."""
    import imagecodecs

    from dicomweb_daemon.codecs.frames import decode_frame

    ds, values = _signed_ct()
    codestream = imagecodecs.jpeg8_encode(values.view(np.uint16) & 0x0FFF, lossless=True, predictor=1,
                                          bitspersample=12)
    ds.PixelData = encapsulate([codestream])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = syntax
    reference = ds.pixel_array
    got, _ = decode_frame(ds, codestream, syntax)
    assert reference.dtype == got.dtype == np.int16
    assert np.array_equal(reference, values) and np.array_equal(got, values)


def _big_ct_frame(target: str) -> tuple[Dataset, bytes, np.ndarray]:
    """A 512x512 signed 12-bit CT frame (textured, so every code-block holds data) in ``target``."""
    y, x = np.mgrid[0:512, 0:512]
    values = (((x * 7 + y * 13) ^ (x * y)) % 4096 - 2048).astype(np.int16)
    ds, _ = _signed_ct()
    ds.Rows = ds.Columns = 512
    ds.PixelData = values.tobytes()
    return ds, codecs.transcode_frame(ds, ds.PixelData, uid.ExplicitVRLittleEndian, target), values


def test_without_imagecodecs_pylibjpeg_decodes(monkeypatch):
    """Where imagecodecs is not installed, its provider says so and JPEG 2000 and JPEG-LS frames are
    decoded by the pydicom decoders (pylibjpeg-openjpeg, pyjpegls) to the same pixels."""
    from dicomweb_daemon.codecs import imagecodecs_codec
    from dicomweb_daemon.codecs.registry import decoder_for

    monkeypatch.setattr(imagecodecs_codec, "_module", lambda: None)
    for syntax in (uid.JPEG2000Lossless, uid.JPEGLSLossless):
        assert decoder_for(syntax).name == "pydicom", syntax
        ds, frame, values = _big_ct_frame(syntax)
        out = codecs.transcode_frame(ds, frame, syntax, uid.ExplicitVRLittleEndian)
        assert np.array_equal(np.frombuffer(out, dtype="<i2").reshape(512, 512), values)


@pytest.mark.parametrize("target", [uid.JPEG2000Lossless, uid.JPEGLSLossless])
def test_big_frame_decodes_alone_on_every_core_and_concurrently_on_one(target):
    """A big frame decoded alone (several OpenJPEG threads) and frames decoded by four threads at
    once (one OpenJPEG thread each) all give the original signed samples."""
    from concurrent.futures import ThreadPoolExecutor

    from dicomweb_daemon.codecs.imagecodecs_codec import ImagecodecsDecoders

    ds, frame, values = _big_ct_frame(target)
    alone, _ = ImagecodecsDecoders().decode_frame(ds, frame, target)
    assert alone.dtype == np.int16 and np.array_equal(alone, values)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: ImagecodecsDecoders().decode_frame(ds, frame, target)[0], range(8)))
    assert all(np.array_equal(r, values) for r in results)


def test_thread_budget_is_every_core_alone_and_one_when_shared():
    """The first frame decoding gets every core (capped); a frame decoding meanwhile gets one; the
    budget comes back when they finish."""
    from dicomweb_daemon.codecs.imagecodecs_codec import MAX_THREADS, _Threads

    budget = _Threads(64)
    with budget as first:
        with budget as second:
            assert (first, second) == (MAX_THREADS, 1)
    with budget as again:
        assert again == MAX_THREADS and budget.running == 1
    assert budget.running == 0
    with _Threads(1) as single:
        assert single == 1


def test_frames_imagecodecs_refuses_fall_back_to_pydicom(monkeypatch):
    """A frame imagecodecs fails on is decoded by the pydicom decoders (pylibjpeg-openjpeg) instead,
    and a codestream nobody can decode is a 400 (CorruptPixelData), not a crash."""
    from dicomweb_daemon.codecs import imagecodecs_codec
    from dicomweb_daemon.codecs.frames import decode_frame

    ds, frame, values = _big_ct_frame(uid.JPEG2000Lossless)
    with pytest.raises(CorruptPixelData):
        decode_frame(ds, frame[:200] + b"\0" * 64, uid.JPEG2000Lossless)

    def refuse(_frame):
        raise RuntimeError("imagecodecs cannot decode this")

    monkeypatch.setattr(imagecodecs_codec, "jpeg2k", refuse)
    got, _ = decode_frame(ds, frame, uid.JPEG2000Lossless)
    assert np.array_equal(got, values)
