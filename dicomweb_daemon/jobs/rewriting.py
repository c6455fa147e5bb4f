"""Stored files rewritten by a modification (``modification/``): the worker-process side of a
modification job, and the single-file rewrites of ``/instances/{id}/modify|anonymize``.

A modification changes a file's attributes, never its pixel data (``Transcode`` aside): when the
pixel data is the file's last element, only the attributes before it are read, rewritten and
written, and the pixel data's bytes are copied from the source file as they are, by the kernel
(``copy_file_range``). A 512x512 CT is then rewritten in about half the time of a whole read, parse
and write of it, for the same bytes.
"""
from __future__ import annotations

import errno
import io
import mmap
import os
from dataclasses import dataclass

from pydicom import dcmread, dcmwrite
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomFileLike
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import UID, generate_uid

from ..codecs.transcode import transcode_dataset
from ..dicom.identifiers import resource_ids
from ..dicom.layout import PIXEL_DATA_TAGS, element_end
from ..dicom.parsing import ParsedInstance, parse_buffer
from ..dicom.transfer_syntaxes import syntax_of_encoding
from ..errors import DaemonError
from ..modification.apply import apply, dry_run
from ..modification.request import Modification
from ..modification.uids import UidMap
from ..storage.reads import read_whole
from ..storage.sources import FileSource, PlacedFile
from ..storage.spool import Spool

# Lossy: JPEG baseline and extended, JPEG-LS near-lossless, JPEG 2000, HTJ2K (PS3.5 Table A-1).
LOSSY_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81",
                            "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.203"})


def _dataset(data: bytes):
    ds = dcmread(io.BytesIO(data), force=True)  # a file may have been stored without its preamble
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = syntax_of_encoding(*ds.original_encoding)
    return ds


def plan(data: bytes, m: Modification, uid_map: UidMap, level: str) -> list[dict]:
    """(cpu thread) What rewriting one stored file would do to each of its elements (a dry run)."""
    return dry_run(_dataset(data), m, uid_map, level)


def rewrite(data: bytes, m: Modification, uid_map: UidMap, level: str) -> tuple[bytes, tuple[str, ...]]:
    """(cpu thread) One stored file rewritten; with the Orthanc IDs of the resources it came from."""
    out = io.BytesIO()
    old = _rewrite_into(out, None, data, m, uid_map, level)
    return out.getvalue(), old


def rewritten_dataset(ds, m: Modification, uid_map: UidMap, level: str):
    """(cpu thread) A stored file's data set as ``m`` rewrites it (in place), and the Orthanc IDs of
    the resources it came from."""
    old = resource_ids(str(ds.get("PatientID", "")), str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                       str(ds.SOPInstanceUID))
    apply(ds, m, uid_map, level)
    if m.transcode and m.transcode != ds.file_meta.TransferSyntaxUID:
        transcode_dataset(ds, m.transcode, m.lossy_quality)  # the codecs' errors say what cannot be converted
        if m.transcode in LOSSY_SYNTAXES:  # other pixels: another instance (PS3.3 C.12.1.1.1)
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(prefix=None)
    return ds, tuple(old)


@dataclass
class Staged:
    """One instance rewritten by a worker: the new file (at its place in the storage under ``name``,
    a name from the file journal; else in the spool folder), and what ingest would have parsed of it."""

    path: str
    size: int
    parsed: ParsedInstance | DaemonError
    name: str | None = None

    def source(self) -> FileSource:
        return FileSource(self.path, self.size) if self.name is None else PlacedFile(self.path, self.size)


def rewrite_batch(inputs: list[tuple[str | None, bytes | None]], mods: list[Modification], uid_map: UidMap,
                  level: str, spool: Spool, charset: str,
                  places: list[tuple[str, str]] | None = None) -> list[tuple[Staged, tuple[str, ...]]]:
    """(worker process or cpu thread) Several stored files, each read here (from its path, else given
    as bytes), rewritten straight into a new file, and parsed as ingest parses (from the page cache):
    the daemon then only indexes them and makes them durable, and no file crosses between processes.

    The new files are written at their ``places`` (journaled name, path in a filesystem storage) when
    given: created in their own folders, where the filesystem gives them inodes near their folder's,
    as when any file is stored, rather than all in the spool folder's; else in the spool folder."""
    out = []
    made: list[str] = []
    try:
        for i, ((path, data), m) in enumerate(zip(inputs, mods, strict=True)):
            name, target = places[i] if places else (None, None)
            if target is None:
                target, fd = spool.new_file("modified-")
            else:
                fd = _create(target)
            made.append(target)
            with open(fd, "wb", buffering=1 << 20) as f:
                old = _rewrite_into(f, path, data, m, uid_map, level)
            source = FileSource(target)
            try:
                with source.buffer() as written:
                    parsed = parse_buffer(written, charset)
            except DaemonError as e:
                parsed = e
            out.append((Staged(target, source.size, parsed, name), old))
    except BaseException:
        for path in made:  # the batch fails whole: none of its files stays
            Spool.remove(path)
        raise
    return out


def _create(target: str) -> int:
    """A new file at ``target`` (its folder made when missing), open for writing."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        return os.open(target, flags, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        return os.open(target, flags, 0o644)


def _rewrite_into(out, path: str | None, data: bytes | None, m: Modification, uid_map: UidMap,
                  level: str) -> tuple[str, ...]:
    """One stored file (at ``path``, else ``data``) rewritten into the open file ``out``; the Orthanc
    IDs of the resources it came from."""
    if m.transcode is None:
        if path is not None:
            with open(path, "rb") as source:
                size = os.fstat(source.fileno()).st_size
                if size and (old := _rewrite_attributes(source, size, out, m, uid_map, level)) is not None:
                    return old
        elif (old := _rewrite_attributes(io.BytesIO(data), len(data), out, m, uid_map, level)) is not None:
            return old
    ds, old = rewritten_dataset(_dataset(read_whole(path) if path is not None else data), m, uid_map, level)
    dcmwrite(out, ds, enforce_file_format=True)  # in the syntax its meta says (big endian included)
    return old


def _rewrite_attributes(source, size: int, out, m: Modification, uid_map: UidMap, level: str):
    """The attributes before the pixel data read and rewritten, the pixel data's bytes copied as they
    are; None (nothing written) when the file is not one this can do: no standard file meta, an
    encoding other than its transfer syntax's, deflated, or elements after the pixel data."""
    try:
        ds = dcmread(source, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - without preamble or meta, or odd: read whole, as ingest took it
        return None
    ts = UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
    pixels = source.tell()
    if not ts.is_transfer_syntax or ts.is_deflated or ds.original_encoding != (ts.is_implicit_VR,
                                                                               ts.is_little_endian):
        return None
    if pixels < size and not _pixels_end_the_file(source, pixels, size, ts):
        return None
    ds, old = rewritten_dataset(ds, m, uid_map, level)
    _write_attributes(out, ds, ts)
    if pixels < size:
        _copy_range(source, out, pixels, size - pixels)
    return old


def _write_attributes(out, ds, ts: UID) -> None:
    """What ``dcmwrite(out, ds, enforce_file_format=True)`` writes of a data set read from a file in
    its transfer syntax's encoding, without its deep copy of the file meta (``ds`` is this rewrite's
    own, its meta may change). The file meta is completed and checked as dcmwrite does it (pydicom's
    ``write_file_meta_info``); a data set dcmwrite would refuse (command elements, no SOP class or
    instance UID) is left to it, to refuse it alike."""
    meta = ds.file_meta
    if (any(tag >> 16 == 0 for tag in ds.keys()) or not ds.get("SOPClassUID") or not ds.get("SOPInstanceUID")
            or meta.get("MediaStorageSOPClassUID") != ds.SOPClassUID
            or meta.get("MediaStorageSOPInstanceUID") != ds.SOPInstanceUID):
        dcmwrite(out, ds, enforce_file_format=True)
        return
    fp = DicomFileLike(out)
    fp.is_implicit_VR, fp.is_little_endian = ts.is_implicit_VR, ts.is_little_endian
    preamble = getattr(ds, "preamble", None) or b"\x00" * 128
    if len(preamble) != 128:
        raise ValueError("'FileDataset.preamble' must be 128-bytes long")
    fp.write(preamble)
    fp.write(b"DICM")
    write_file_meta_info(fp, meta, enforce_standard=True)
    write_dataset(fp, ds)


def _pixels_end_the_file(source, pixels: int, size: int, ts: UID) -> bool:
    """Whether the element at ``pixels`` is pixel data that lasts to the end of the file."""
    view = source.getbuffer() if isinstance(source, io.BytesIO) else mmap.mmap(source.fileno(), 0,
                                                                               access=mmap.ACCESS_READ)
    try:
        tag, end = element_end(view, pixels, not ts.is_implicit_VR, ts.is_little_endian)
        return tag in PIXEL_DATA_TAGS and end == size
    except ValueError:  # truncated or malformed: the whole read says what is wrong
        return False
    finally:
        view.release() if isinstance(view, memoryview) else view.close()


def _copy_range(source, out, offset: int, length: int) -> None:
    """``length`` bytes of ``source`` at ``offset`` appended to ``out``: in the kernel between two
    files, else written from memory."""
    if isinstance(source, io.BytesIO):
        with source.getbuffer() as view:
            out.write(view[offset:offset + length])
        return
    try:
        target = out.fileno()
    except (AttributeError, io.UnsupportedOperation):
        target = None
    if target is not None:
        out.flush()  # the kernel appends at the file's own position
        try:
            while length:
                copied = os.copy_file_range(source.fileno(), target, length, offset)
                if not copied:
                    raise OSError(f"the source file ended {length} bytes early")
                offset, length = offset + copied, length - copied
            return
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
    source.seek(offset)
    while length:
        chunk = source.read(min(length, 1 << 20))
        if not chunk:
            raise OSError(f"the source file ended {length} bytes early")
        if target is None:
            out.write(chunk)
        else:
            written = memoryview(chunk)
            while written:  # past the buffered writer, whose idea of the position the kernel moved
                written = written[os.write(target, written):]
        length -= len(chunk)
