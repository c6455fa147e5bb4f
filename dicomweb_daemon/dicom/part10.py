"""A received data set made a DICOM file (PS3.10): the preamble, "DICM" and the file meta
information, as a DICOM node writes what it receives over the network."""
from __future__ import annotations

import io

from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

from .. import __version__

# Written with pydicom; the version name says which program wrote the file (SH: 16 characters).
IMPLEMENTATION_VERSION = f"DICOMWEBD {__version__}"[:16]


def part10_file(dataset: bytes, sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str) -> bytes:
    """``dataset`` (encoded in ``transfer_syntax``) with a preamble and its file meta information."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    out = io.BytesIO()
    out.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(out, meta, enforce_standard=True)
    out.write(dataset)
    return out.getvalue()
