"""The frame service called directly, without HTTP: a real SQLite index and filesystem storage in
tmp_path, pydicom's test files stored as ingest stores them, and every answer checked against
pydicom's own reading of the same file."""
from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np
import pydicom
import pytest
import pytest_twisted
from PIL import Image
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from twisted.internet import defer

from dicomweb_daemon.codecs.errors import CorruptPixelData, NoDecoder, NoEncoder, NoSuchFrame, NotAnImage
from dicomweb_daemon.codecs.instance import StoredInstance
from dicomweb_daemon.codecs.service import FrameService
from dicomweb_daemon.config.settings import validate
from dicomweb_daemon.index.sqlite import SqliteIndex
from dicomweb_daemon.index.writes import Origin
from dicomweb_daemon.storage.filesystem import FilesystemStorage
from dicomweb_daemon.storage.ingest import Ingest
from dicomweb_daemon.storage.reads import ShortRead
from dicomweb_daemon.storage.sources import BytesSource
from dicomweb_daemon.storage.spool import Spool
from tests.dicom_files import eight_bit_image, make_ct, testdata

EXPLICIT_LE = uid.ExplicitVRLittleEndian


@dataclass
class Parts:
    """What the frame service is built on, as the daemon builds it, and the ingest that fills it."""

    storage: FilesystemStorage
    index: SqliteIndex
    frames: FrameService
    ingest: Ingest


class LocalFilesHidden(FilesystemStorage):
    """A storage area without local files (as a remote one): read only through read / read_range."""

    def path(self, uuid: str, kind: str) -> None:
        return None


def _parts(root, storage_class=FilesystemStorage) -> Parts:
    root.mkdir(parents=True, exist_ok=True)
    settings, _ = validate({"StorageDirectory": str(root / "files"), "SyncWrites": False})
    storage = storage_class(str(root / "files"), sync=False)
    index = SqliteIndex(str(root / "index.sqlite"), sync=False)
    ingest = Ingest(storage, index, settings, Spool(str(root / "spool")))
    return Parts(storage, index, FrameService(storage, index), ingest)


@pytest.fixture
def parts(tmp_path, pools) -> Parts:
    return _parts(tmp_path)


async def store(parts: Parts, data: bytes) -> StoredInstance:
    """Put an instance into the storage and the index through the ingest entry point; the stored
    instance comes back with its DICOM JSON."""
    result = await parts.ingest.store_one(BytesSource(data), Origin())
    return await parts.frames.instance(result.instance.ids[3], metadata=True)


def file_bytes(name: str) -> bytes:
    with open(testdata(name), "rb") as f:
        return f.read()


def native(data: bytes, ds: Dataset) -> np.ndarray:
    """Little-endian native frame bytes as an array shaped like one of ``ds``'s frames."""
    kind = "i" if ds.PixelRepresentation == 1 else "u"
    return np.frombuffer(data, dtype=f"<{kind}{ds.BitsAllocated // 8}").reshape(ds.Rows, ds.Columns)


def decode_with_pydicom(ds: Dataset, frame: bytes, syntax: str) -> np.ndarray:
    """One encapsulated frame decoded by pydicom alone, as a single-frame copy of ``ds``."""
    single = pydicom.dcmread(io.BytesIO(_saved(ds)))
    single.NumberOfFrames = 1
    single.PixelData = encapsulate([frame])
    single["PixelData"].VR = "OB"
    single.file_meta.TransferSyntaxUID = syntax
    return single.pixel_array


def _saved(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


# -- as stored ----------------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_native_frames_as_stored_are_pydicoms_bytes(parts):
    """Each frame of a native multi-frame file, as stored, is its slice of pydicom's PixelData."""
    data = file_bytes("emri_small.dcm")
    instance = await store(parts, data)
    ds = pydicom.dcmread(io.BytesIO(data))
    size = ds.Rows * ds.Columns * ds.BitsAllocated // 8
    expected = [ds.PixelData[i * size:(i + 1) * size] for i in range(int(ds.NumberOfFrames))]
    assert await parts.frames.frames_as_stored(instance, list(range(1, 11))) == expected
    assert await parts.frames.frame(instance, 7) == expected[6]
    assert await parts.frames.frame(instance, 7, EXPLICIT_LE) == expected[6]  # the stored syntax: as stored


@pytest_twisted.ensureDeferred
async def test_encapsulated_frames_as_stored_are_pydicoms_fragments(parts):
    """Each frame of a JPEG 2000 file, as stored, is the codestream pydicom finds for it."""
    data = file_bytes("emri_small_jpeg_2k_lossless.dcm")
    instance = await store(parts, data)
    ds = pydicom.dcmread(io.BytesIO(data))
    expected = list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))
    assert await parts.frames.frames_as_stored(instance, [3, 1, 10]) == [expected[2], expected[0], expected[9]]
    assert await parts.frames.frame(instance, 5, uid.JPEG2000Lossless) == expected[4]


def test_frames_are_read_in_groups_within_a_budget():
    """Frames sent as stored are read several per io call, each group within the byte budget."""
    instance = StoredInstance("id", "uuid", 0, EXPLICIT_LE, [[[i * 100, 100]] for i in range(10)])
    assert FrameService.read_groups(instance, [1, 2, 3, 4, 5], budget=250) == [[1, 2], [3, 4], [5]]
    assert FrameService.read_groups(instance, [9, 3], budget=50) == [[9], [3]]  # one frame at least


# -- converted ----------------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_implicit_vr_frame_in_explicit_little_endian_is_the_same_bytes(parts):
    """Implicit and explicit VR little endian frames are byte-identical (PS3.5 §A.1, §A.2)."""
    data = file_bytes("MR_small_implicit.dcm")
    instance = await store(parts, data)
    ds = pydicom.dcmread(io.BytesIO(data))
    got = await parts.frames.frame(instance, 1, EXPLICIT_LE)
    assert np.array_equal(native(got, ds), ds.pixel_array)


@pytest_twisted.ensureDeferred
async def test_big_endian_frames_are_swapped_to_little_endian(parts):
    """A big-endian frame asked in explicit VR little endian has its 16-bit words swapped."""
    data = file_bytes("emri_small_big_endian.dcm")
    instance = await store(parts, data)
    ds = pydicom.dcmread(io.BytesIO(data))
    stored = await parts.frames.frame(instance, 4)
    got = await parts.frames.frame(instance, 4, EXPLICIT_LE)
    assert got != stored and np.array_equal(native(got, ds), ds.pixel_array[3])


@pytest.mark.parametrize("name", ["emri_small_jpeg_ls_lossless.dcm", "emri_small_jpeg_2k_lossless.dcm",
                                  "emri_small_RLE.dcm"])
@pytest_twisted.ensureDeferred
async def test_compressed_frames_decode_to_pydicoms_pixels(parts, name):
    """JPEG-LS, JPEG 2000 and RLE frames asked in explicit VR little endian are pydicom's pixel_array."""
    data = file_bytes(name)
    instance = await store(parts, data)
    ds = pydicom.dcmread(io.BytesIO(data))
    reference = ds.pixel_array
    for number in (1, 6, 10):
        got = await parts.frames.frame(instance, number, EXPLICIT_LE)
        assert np.array_equal(native(got, ds), reference[number - 1]), number


@pytest.mark.parametrize("target", [uid.RLELossless, uid.JPEGLSLossless, uid.JPEG2000Lossless])
@pytest_twisted.ensureDeferred
async def test_native_frame_encoded_losslessly_round_trips(parts, target):
    """A native CT frame encoded in a lossless syntax decodes (with pydicom alone) to the same pixels."""
    data = file_bytes("CT_small.dcm")
    instance = await store(parts, data)
    ds = pydicom.dcmread(io.BytesIO(data))
    encoded = await parts.frames.frame(instance, 1, target)
    assert encoded != await parts.frames.frame(instance, 1)
    assert np.array_equal(decode_with_pydicom(ds, encoded, target), ds.pixel_array)


@pytest_twisted.ensureDeferred
async def test_pixel_module_is_read_once_per_stored_file(parts):
    """Converting frames of an instance read without its JSON fetches the pixel module once, then
    keeps it for that stored file."""
    data = file_bytes("emri_small_RLE.dcm")
    stored = await store(parts, data)
    instance = await parts.frames.instance(stored.public_id)
    assert instance.metadata is None and parts.frames.pixel_modules.get(instance.file_uuid) is None
    await parts.frames.frame(instance, 2, EXPLICIT_LE)
    assert parts.frames.pixel_modules.get(instance.file_uuid)["Rows"] == 64


@pytest_twisted.ensureDeferred
async def test_identical_conversions_at_once_run_once(parts):
    """Two identical conversions asked at once share one result (the very same bytes object)."""
    instance = await store(parts, file_bytes("emri_small_jpeg_2k_lossless.dcm"))
    first = defer.ensureDeferred(parts.frames.frame(instance, 3, EXPLICIT_LE))
    second = defer.ensureDeferred(parts.frames.frame(instance, 3, EXPLICIT_LE))
    assert parts.frames.flights.in_flight() == 1
    a, b = await first, await second
    assert a is b and len(a) == 64 * 64 * 2
    third = await parts.frames.frame(instance, 3, EXPLICIT_LE)  # nothing kept: a new conversion
    assert third == a and third is not a


# -- decoded and rendered -----------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_decoded_frame_is_pydicoms_array(parts):
    """A decoded frame is the array pydicom gives, with no pixel attribute changed."""
    data = file_bytes("emri_small_jpeg_ls_lossless.dcm")
    instance = await store(parts, data)
    array, changes = await parts.frames.decoded(instance, 8)
    assert np.array_equal(array, pydicom.dcmread(io.BytesIO(data)).pixel_array[7]) and changes == {}


@pytest_twisted.ensureDeferred
async def test_typed_image_keeps_the_stored_values(parts):
    """A 16-bit PNG of a frame holds its stored values, unscaled (Orthanc's /image-uint16)."""
    data = make_ct(size=32)
    instance = await store(parts, data)
    png = await parts.frames.orthanc_image(instance, 1, "uint16", "image/png")
    got = np.asarray(Image.open(io.BytesIO(png)))
    assert np.array_equal(got.astype(np.uint16), pydicom.dcmread(io.BytesIO(data)).pixel_array)


@pytest_twisted.ensureDeferred
async def test_numpy_export_holds_every_frame(parts):
    """The .npy of a multi-frame JPEG-LS instance is (frames, rows, columns, 1) of pydicom's values."""
    data = file_bytes("emri_small_jpeg_ls_lossless.dcm")
    instance = await store(parts, data)
    got = np.load(io.BytesIO(await parts.frames.instance_numpy(instance, rescale=False, compress=False)))
    assert got.shape == (10, 64, 64, 1)
    assert np.array_equal(got[..., 0], pydicom.dcmread(io.BytesIO(data)).pixel_array)


@pytest_twisted.ensureDeferred
async def test_rendered_images_have_the_asked_size_and_format(parts):
    """Rendered frames are PNG or JPEG that Pillow reads, at the image's size or fitted to a viewport."""
    instance = await store(parts, file_bytes("CT_small.dcm"))
    picture = Image.open(io.BytesIO(await parts.frames.rendered(instance, 1, media_type="image/png")))
    assert (picture.format, picture.size, picture.mode) == ("PNG", (128, 128), "L")
    assert len(set(np.asarray(picture).ravel().tolist())) > 10  # an image, not a flat grey
    multi = await store(parts, file_bytes("emri_small_RLE.dcm"))
    small = Image.open(io.BytesIO(await parts.frames.rendered(multi, 9, media_type="image/jpeg",
                                                              viewport=(32, 32))))
    assert (small.format, small.size) == ("JPEG", (32, 32))


@pytest_twisted.ensureDeferred
async def test_rendering_parses_the_stored_json_once_per_file(parts):
    """The header rendering needs is parsed from the stored JSON once, then kept by stored file."""
    instance = await store(parts, file_bytes("MR_small.dcm"))
    first = await parts.frames.rendered(instance, 1, media_type="image/png")
    header = parts.frames.headers.get(instance.file_uuid, None)  # None: no JSON to parse again
    assert header is not None and header[1]["rows"] == 64
    assert await parts.frames.rendered(instance, 1, media_type="image/png") == first


@pytest_twisted.ensureDeferred
async def test_header_cache_keeps_nothing_for_an_instance_without_json(parts):
    """Regression: asking the header cache without the stored JSON cached None, so the file was
    parsed for every later rendering; now nothing is kept, and the JSON is parsed when it comes."""
    instance = await store(parts, file_bytes("MR_small.dcm"))
    assert parts.frames.headers.get(instance.file_uuid, None) is None
    header = parts.frames.headers.get(instance.file_uuid, instance.metadata)
    assert header is not None and header[1]["rows"] == 64


@pytest_twisted.ensureDeferred
async def test_orthanc_routes_read_through_the_json_and_frame_table(parts, monkeypatch):
    """Orthanc's preview, rendered, typed images, matlab and numpy of an ordinary image never parse
    the stored file: the stored JSON and the frame table answer (one ranged read)."""
    from dicomweb_daemon.codecs import stored

    def no_parsing(*args, **kwargs):
        raise AssertionError("the stored file was parsed")

    instance = await store(parts, file_bytes("MR_small.dcm"))
    monkeypatch.setattr(stored, "open_image", no_parsing)
    for kind in ("preview", "rendered", "uint8", "int16"):
        assert (await parts.frames.orthanc_image(instance, 1, kind, "image/png"))[:4] == b"\x89PNG", kind
    assert (await parts.frames.matlab(instance, 1)).startswith(b"double([ ")
    frame = np.load(io.BytesIO(await parts.frames.frame_numpy(instance, 1, rescale=False, compress=False)))
    assert np.array_equal(frame[..., 0], pydicom.dcmread(io.BytesIO(file_bytes("MR_small.dcm"))).pixel_array)


@pytest_twisted.ensureDeferred
async def test_orthanc_images_are_refused_as_orthanc_refuses_them(parts):
    """A JPEG 2000 frame is NoDecoder on Orthanc's routes (no GDCM plugin), a colour image has no
    typed form (IncompatibleFormat); the DICOMweb rendering decodes the JPEG 2000 frame."""
    from dicomweb_daemon.codecs.errors import IncompatibleFormat, NoDecoder

    j2k = await store(parts, file_bytes("MR_small_jp2klossless.dcm"))
    with pytest.raises(NoDecoder):
        await parts.frames.orthanc_image(j2k, 1, "preview", "image/png")
    assert (await parts.frames.rendered(j2k, 1, media_type="image/png"))[:4] == b"\x89PNG"
    rgb = await store(parts, file_bytes("SC_rgb.dcm"))
    with pytest.raises(IncompatibleFormat):
        await parts.frames.orthanc_image(rgb, 1, "uint8", "image/png")


# -- whole files --------------------------------------------------------------------------------
@pytest.mark.parametrize("target", [EXPLICIT_LE, uid.JPEG2000Lossless])
@pytest_twisted.ensureDeferred
async def test_whole_file_transcode_is_readable_by_pydicom(parts, target):
    """A stored file transcoded whole is a Part-10 file in the target syntax with the same pixels."""
    data = file_bytes("MR_small_bigendian.dcm")
    instance = await store(parts, data)
    out = pydicom.dcmread(io.BytesIO(await parts.frames.transcoded_file(instance, target)))
    assert out.file_meta.TransferSyntaxUID == target
    assert np.array_equal(out.pixel_array, pydicom.dcmread(io.BytesIO(data)).pixel_array)


def test_what_can_be_answered():
    """The service says which stored syntax can be answered in which target, for negotiation."""
    assert FrameService.can_send_file(uid.ExplicitVRBigEndian, EXPLICIT_LE)
    assert FrameService.can_convert_frames(uid.JPEG2000Lossless, EXPLICIT_LE)
    assert FrameService.can_convert_frames(EXPLICIT_LE, uid.JPEGLossless)  # libjpeg-turbo writes it
    assert not FrameService.can_convert_frames(EXPLICIT_LE, uid.HTJ2KLossless)  # nothing writes it
    assert not FrameService.can_send_file(uid.MPEG2MPML, EXPLICIT_LE)  # nothing reads it
    assert not FrameService.can_convert_frames(EXPLICIT_LE, "1.2.3.4")
    assert FrameService.as_stored(EXPLICIT_LE, uid.ImplicitVRLittleEndian)
    assert not FrameService.as_stored(uid.ExplicitVRBigEndian, EXPLICIT_LE)


# -- storages without local files ---------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_storage_without_local_files_gives_the_same_answers(tmp_path, pools):
    """Through read / read_range only, frames as stored, converted and rendered are the same."""
    data = file_bytes("emri_small_jpeg_2k_lossless.dcm")
    local, remote = _parts(tmp_path / "local"), _parts(tmp_path / "remote", LocalFilesHidden)
    a, b = await store(local, data), await store(remote, data)
    assert remote.storage.path(b.file_uuid, "dicom") is None
    assert await remote.frames.frames_as_stored(b, [2, 9]) == await local.frames.frames_as_stored(a, [2, 9])
    assert await remote.frames.frame(b, 4, EXPLICIT_LE) == await local.frames.frame(a, 4, EXPLICIT_LE)
    assert await remote.frames.rendered(b, 4, media_type="image/png") == \
        await local.frames.rendered(a, 4, media_type="image/png")


# -- what cannot be answered --------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_missing_frames_are_no_such_frame(parts):
    """A frame number the instance does not have is NoSuchFrame, as stored, converted or rendered."""
    instance = await store(parts, file_bytes("emri_small.dcm"))
    with pytest.raises(NoSuchFrame, match="no frame 11: the instance has 10"):
        await parts.frames.frame(instance, 11)
    with pytest.raises(NoSuchFrame):
        await parts.frames.frames_as_stored(instance, [1, 0])
    with pytest.raises(NoSuchFrame):
        await parts.frames.rendered(instance, 11)


@pytest_twisted.ensureDeferred
async def test_impossible_targets_are_refused_before_decoding(parts):
    """A target no codec writes is NoEncoder naming the encodable syntaxes; pixels no codec reads
    are NoDecoder; an instance without pixels is NotAnImage."""
    instance = await store(parts, file_bytes("CT_small.dcm"))
    with pytest.raises(NoEncoder) as refused:
        await parts.frames.frame(instance, 1, uid.HTJ2KLossless)
    assert uid.JPEG2000Lossless in refused.value.details
    video = await store(parts, eight_bit_image(16, 16, encapsulate([b"\x00\x00\x01\xb3" + b"\0" * 60]), uid.MPEG2MPML))
    with pytest.raises(NoDecoder):
        await parts.frames.frame(video, 1, EXPLICIT_LE)
    report = pydicom.dcmread(io.BytesIO(make_ct()))
    del report.PixelData
    plain = await store(parts, _saved(report))
    with pytest.raises(NotAnImage):
        await parts.frames.rendered(plain, 1, media_type="image/png")


@pytest_twisted.ensureDeferred
async def test_corrupt_frames_are_corrupt_pixel_data(parts):
    """A codestream of garbage, or a stored file cut short, is CorruptPixelData when converted;
    a short read as stored is ShortRead, never a truncated frame."""
    garbage = await store(parts, eight_bit_image(16, 16, encapsulate([b"\xff\x4f\xff\x51" + b"\x13" * 200]),
                                       uid.JPEG2000Lossless))
    with pytest.raises(CorruptPixelData):
        await parts.frames.frame(garbage, 1, EXPLICIT_LE)
    with pytest.raises(CorruptPixelData):
        await parts.frames.rendered(garbage, 1, media_type="image/png")
    instance = await store(parts, file_bytes("emri_small_RLE.dcm"))
    path = parts.storage.path(instance.file_uuid, "dicom")
    os.truncate(path, instance.frames[-1][0][0] + 10)  # the last frame loses its end
    with pytest.raises(CorruptPixelData, match="shorter than its frame table"):
        await parts.frames.frame(instance, 10, EXPLICIT_LE)
    with pytest.raises(ShortRead):
        await parts.frames.frame(instance, 10)
    assert len(await parts.frames.frame(instance, 1, EXPLICIT_LE)) == 64 * 64 * 2  # the others still read
