"""One way out for pixels: "frame n of this stored instance, in this transfer syntax", as stored,
converted, decoded or rendered, for every protocol (WADO-RS frames and rendered, WADO-URI, the
Orthanc image routes, and DIMSE transcoding).

Each answer costs the least the stored facts allow, and no more than one hop per pool:

* as stored: ranged reads through the frame table computed at ingest, several frames per io call;
* converted: at most one db read of the pixel module (then kept per stored file) and one cpu job
  that reads the frame and converts it; identical conversions asked at once run once;
* rendered: one cpu job that reads the frame by its ranges and renders it, with the header parsed
  from the stored DICOM JSON kept per stored file (the file is parsed only when the JSON is not
  enough);
* whole files in another syntax: one cpu job, identical ones asked at once run once.

Errors are :mod:`.errors` (no protocol meaning): each caller maps them to its own statuses.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..storage.reads import OpenedFile, ShortRead, StoredFile, read_frames, read_ranges
from ..threads import in_cpu, in_db, in_io
from . import arrays, orthanc
from .conversion import PixelModules, as_stored, convert_stored_frame, natively_reencoded, transcode_stored_file
from .errors import CorruptPixelData
from .frames import Image
from .instance import StoredInstance
from .render import document, video
from .single_flight import SingleFlight
from .stored import HeaderCache, image_of, render_stored
from .transcode import can_transcode

#: Bytes of stored frames read per io call when several are sent (the next group is read while
#: this one is written).
READ_BUDGET = 4 << 20


class FrameService:
    """Frames of the instances of one storage area and index (both IStorageArea / IIndex)."""

    def __init__(self, storage, index):
        self.storage = storage
        self.index = index
        self.headers = HeaderCache()  # headers parsed from the stored JSON, for rendering
        self.pixel_modules = PixelModules()  # pixel modules, for converting frames
        self.flights = SingleFlight()  # conversions under way, for the identical ones asked meanwhile

    # -- which instance -----------------------------------------------------------------------
    def describe(self, public_id: str, metadata: bool = False) -> StoredInstance:
        """(db thread) The stored instance ``public_id``, with its DICOM JSON when ``metadata``:
        callers compose it with other index reads in the same db call."""
        row = self.index.instance(public_id)
        if metadata:
            row["metadata"] = self.index.metadata_blob(public_id)
        return StoredInstance.from_row(row, public_id)

    async def instance(self, public_id: str, *, metadata: bool = False) -> StoredInstance:
        """The stored instance ``public_id`` (one db call)."""
        return await in_db(self.describe, public_id, metadata)

    def file(self, instance: StoredInstance) -> StoredFile:
        return StoredFile(self.storage, instance.file_uuid, compression=instance.compression)

    async def open_file(self, instance: StoredInstance, frames: int) -> OpenedFile | None:
        """The stored file held open for reading ``frames`` frames in turn (each then read or
        converted in its own job): a compressed file has no bytes to read in place, so it is read
        and inflated once here (one io call) instead of once per frame. None when each frame's
        ranged read costs less: an uncompressed file, or a single frame. Close it when done."""
        if not instance.compression or frames < 2:
            return None
        try:
            return await in_io(self.file(instance).open)
        except ShortRead:  # as a frame's read says it (convert_stored_frame, StoredImage.frame)
            raise CorruptPixelData("the stored file is shorter than its frame table says") from None

    # -- what is possible (any thread, no I/O) ------------------------------------------------
    @staticmethod
    def as_stored(stored: str, target: str | None) -> bool:
        """Whether frames stored in ``stored`` go out in ``target`` (None: as stored) unchanged."""
        return as_stored(stored, target)

    @staticmethod
    def can_convert_frames(stored: str, target: str) -> bool:
        """Whether frames stored in ``stored`` can be answered in ``target`` (a codec decodes the one
        and encodes the other, or the frames are the same bytes)."""
        try:
            return bool(can_transcode(stored, target))
        except Exception:  # noqa: BLE001 - an unknown UID is simply not possible
            return False

    @classmethod
    def can_send_file(cls, stored: str, target: str) -> bool:
        """Whether a whole file stored in ``stored`` can be answered in ``target``."""
        return target == stored or natively_reencoded(stored, target) or cls.can_convert_frames(stored, target)

    # -- frames -------------------------------------------------------------------------------
    @staticmethod
    def read_groups(instance: StoredInstance, numbers: list[int], budget: int = READ_BUDGET) -> list[list[int]]:
        """``numbers`` grouped in order, each group within ``budget`` bytes (at least one frame):
        what :meth:`frames_as_stored` should be asked at once. A compressed file is inflated whole
        for any read: all its frames are then one group."""
        if instance.compression:
            return [list(numbers)] if numbers else []
        groups: list[list[int]] = []
        total = budget
        for n in numbers:
            size = instance.frame_size(n)
            if total + size > budget:
                groups.append([])
                total = 0
            groups[-1].append(n)
            total += size
        return groups

    async def frames_as_stored(self, instance: StoredInstance, numbers: list[int]) -> list[bytes]:
        """Frames ``numbers`` (1-based) as stored, in one io call."""
        return await read_frames(self.storage, instance.file_uuid, [instance.ranges(n) for n in numbers],
                                 compression=instance.compression)

    async def frame(self, instance: StoredInstance, number: int, target: str | None = None,
                    opened: OpenedFile | None = None) -> bytes:
        """Frame ``number`` (1-based) as stored, or in transfer syntax ``target``: one io call as
        stored; else one cpu job that reads and converts it (viewers on several machines asking
        for the same frame at once share it). ``opened``: the file held open (:meth:`open_file`)."""
        ranges = instance.ranges(number)
        if as_stored(instance.transfer_syntax, target):
            if opened is not None:
                return await in_io(opened.read_ranges, ranges)
            return await read_ranges(self.storage, instance.file_uuid, ranges, compression=instance.compression)
        return await self.flights.run((instance.file_uuid, number, target),
                                      lambda: self._converted(instance, ranges, target, opened))

    async def _converted(self, instance: StoredInstance, ranges: list, target: str,
                         opened: OpenedFile | None = None) -> bytes:
        attrs = self.pixel_modules.get(instance.file_uuid)
        blob = None
        if attrs is None:  # read from the stored JSON in the same cpu job as the conversion
            blob = instance.metadata
            if blob is None:
                blob = await in_db(self.index.metadata_blob, instance.public_id)
        data, attrs = await in_cpu(convert_stored_frame, opened or self.file(instance), ranges,
                                   instance.transfer_syntax, target, attrs, blob)
        self.pixel_modules.put(instance.file_uuid, attrs)
        return data

    async def raw_frame(self, instance: StoredInstance, number: int) -> bytes:
        """Frame ``number`` as stored: through the frame table when it lists the frame, else from
        the parsed file (single-bit frames have no stored form)."""
        if 1 <= number <= len(instance.frames) and instance.frames[number - 1]:
            return await self.frame(instance, number)
        return await in_cpu(lambda: arrays.raw_frame(self._image(instance), number - 1))

    # -- decoded and rendered ---------------------------------------------------------------------
    def _image(self, instance: StoredInstance) -> Image:
        """(cpu) The instance's image, through its frame table and JSON when they suffice."""
        return image_of(self.file(instance), instance.frames, instance.transfer_syntax, instance.metadata,
                        instance.file_uuid, self.headers)

    async def decoded(self, instance: StoredInstance, number: int) -> tuple[np.ndarray, dict]:
        """Frame ``number`` decoded: ``(array, changed pixel attributes)`` (ICodec.decode_frame)."""
        return await in_cpu(lambda: self._image(instance).decode(number - 1))

    async def orthanc_image(self, instance: StoredInstance, number: int, kind: str, media_type: str, *,
                            quality: int | None = None, window: tuple | None = None,
                            size: tuple[int | None, int | None] = (None, None)) -> bytes:
        """Frame ``number`` as one of Orthanc's image routes answers it (:mod:`.orthanc`), in one cpu
        job: ``kind`` is ``preview``, ``rendered`` (``window``, fit in ``size`` = (width, height)),
        ``uint8``, ``uint16`` or ``int16``; ``media_type`` image/png, image/jpeg or PAM."""
        def job() -> bytes:
            image = self._image(instance)
            if kind == "preview":
                array = orthanc.preview(image, number - 1)
            elif kind == "rendered":
                array = orthanc.resized(orthanc.rendered(image, number - 1, window), *size)
            else:
                array = orthanc.typed(image, number - 1, kind)
            return orthanc.encode(array, media_type, quality)

        return await in_cpu(job)

    async def wado_uri_image(self, instance: StoredInstance, number: int, media_type: str, **options) -> bytes:
        """Frame ``number`` as WADO-URI answers an image (:func:`.orthanc.wado_uri`: Orthanc's rendered
        pixels, ``window``, ``viewport``, ``region``, ``quality``), in one cpu job."""
        return await in_cpu(lambda: orthanc.wado_uri(self._image(instance), number - 1, media_type, **options))

    async def matlab(self, instance: StoredInstance, number: int) -> bytes:
        """Frame ``number``'s stored values as Orthanc's /matlab expression, in one cpu job."""
        return await in_cpu(lambda: orthanc.matlab(self._image(instance), number - 1))

    async def frame_numpy(self, instance: StoredInstance, number: int, rescale: bool, compress: bool) -> bytes:
        """``.npy`` (``.npz`` when ``compress``) of frame ``number``, shaped (rows, columns, channels)."""
        return await in_cpu(lambda: arrays.encode_numpy(arrays.frame_array(self._image(instance), number - 1,
                                                                           rescale), compress))

    async def instance_numpy(self, instance: StoredInstance, rescale: bool, compress: bool) -> bytes:
        """``.npy`` (``.npz`` when ``compress``) of the instance's frames, shaped (frames, rows, columns,
        channels): float32 modality values when ``rescale``, else stored values; one cpu job."""
        return await in_cpu(lambda: arrays.encode_numpy(arrays.instance_array(self._image(instance), rescale),
                                                        compress))

    async def series_numpy(self, instances: list[tuple[StoredInstance, dict]], rescale: bool, compress: bool) -> bytes:
        """:meth:`instance_numpy` of a series' instances (each with its main tags) stacked in
        spatial order; one cpu job, each image opened when its turn comes."""
        openers: list[tuple[Callable[[], Image], dict]] = [
            ((lambda inst=inst: self._image(inst)), tags) for inst, tags in instances]
        return await in_cpu(lambda: arrays.encode_numpy(arrays.series_array(openers, rescale), compress))

    async def rendered(self, instance: StoredInstance, frame: int = 1, *, opened: OpenedFile | None = None,
                       **options) -> bytes:
        """Frame ``frame`` rendered for people (:func:`.render.render` options), in one cpu job;
        ``opened``: the file held open (:meth:`open_file`)."""
        return await in_cpu(render_stored, opened or self.file(instance), instance.frames, instance.transfer_syntax,
                            instance.metadata, frame, key=instance.file_uuid, headers=self.headers, **options)

    async def document(self, instance: StoredInstance) -> tuple[bytes, str] | None:
        """The encapsulated document (PDF, CDA) and its media type, or None for other instances."""
        return await in_cpu(lambda: document(self.file(instance).source()))

    async def video(self, instance: StoredInstance) -> tuple[bytes, str] | None:
        """A video instance's bitstream and its media type, or None for other instances."""
        return await in_cpu(lambda: video(self.file(instance).source()))

    # -- whole files ------------------------------------------------------------------------------
    async def transcoded_file(self, instance: StoredInstance, target: str, quality: int | None = None) -> bytes:
        """The whole stored file in transfer syntax ``target`` (not as stored; a lossy one at
        ``quality``, 1-100), in one cpu job; identical requests at once share it."""
        return await self.flights.run((instance.file_uuid, target, quality), lambda: in_cpu(
            transcode_stored_file, self.file(instance), instance.transfer_syntax, target, quality))

