"""A stored instance as the frame service sees it: what ingest computed once and the index keeps, so
that answering a frame never parses the file to find where it is."""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import NoSuchFrame


@dataclass(slots=True)
class StoredInstance:
    """One instance's stored file, transfer syntax and frame table (from an index row)."""

    public_id: str
    file_uuid: str
    file_size: int
    transfer_syntax: str
    #: One ``[[offset, length], ...]`` list per frame: native frames are one range, encapsulated
    #: ones their fragments (PS3.5 §A.4); empty without pixel data.
    frames: list = field(default_factory=list)
    number_of_frames: int | None = None
    sop_class_uid: str | None = None
    #: The compressed DICOM JSON computed at ingest, when it was read with the row.
    metadata: bytes | None = None
    #: How the file is stored (storage/compression.py): a compressed one is read whole, never in place.
    compression: int = 0

    @classmethod
    def from_row(cls, row: dict, public_id: str | None = None) -> StoredInstance:
        """From a row of ``IIndex.instance`` (give its ``public_id``) or ``wado_instances``."""
        return cls(public_id or row["public_id"], row["file_uuid"], row["file_size"], row["transfer_syntax"],
                   row.get("frames") or [], row.get("number_of_frames"), row.get("sop_class_uid"),
                   row.get("metadata"), row["compression"])

    def ranges(self, number: int) -> list:
        """The byte ranges of frame ``number`` (1-based, as in PS3.18); NoSuchFrame when absent."""
        if not self.frames:
            raise NoSuchFrame("this instance has no pixel data, hence no frames")
        if not 1 <= number <= len(self.frames):
            raise NoSuchFrame(f"no frame {number}: the instance has {len(self.frames)} frame(s)")
        return self.frames[number - 1]

    def frame_size(self, number: int) -> int:
        """Bytes of frame ``number`` as stored."""
        return sum(length for _, length in self.ranges(number))
