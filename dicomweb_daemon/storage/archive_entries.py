"""What goes into an archive: the instances under some resources with their folder names, and the
hook that gives an instance's file in another transfer syntax (through the frame service) to the
thread that writes the archive. Used by synchronous downloads and by archive jobs alike."""
from __future__ import annotations

from twisted.internet import defer, reactor
from twisted.internet.threads import blockingCallFromThread
from twisted.logger import Logger

from ..codecs.errors import CodecError
from .archive import ArchiveEntry, Fetch, folder_name

log = Logger()


def entries_of(index, ids: list[str]) -> list[ArchiveEntry]:
    """(db thread) Every instance under ``ids`` (once) with the folder names of its patient, study
    and series."""
    entries = []
    for item in index.instances_under(ids):
        p, st, se = item["patient"], item["study"], item["series"]
        folders = (folder_name(p.get("PatientID", ""), p.get("PatientName", "")),
                   folder_name(st.get("AccessionNumber", ""), st.get("StudyDescription", "")),
                   folder_name(se.get("Modality", ""), se.get("SeriesNumber", ""), se.get("SeriesDescription", "")))
        entries.append(ArchiveEntry(item["file_uuid"], folders, se.get("Modality", ""), item["ID"], item["size"],
                                    item["compression"]))
    return entries


def transcoding_fetch(frames, target: str | None, quality: int | None = None) -> Fetch | None:
    """The hook that gives an instance's file in ``target`` (a lossy one at ``quality``) through the
    frame service ``frames``,
    called from the archive's io thread; None (the stored file) when it already is, or when no codec
    can make it (the file then goes as it is, rather than the whole archive failing)."""
    if target is None:
        return None

    async def transcoded(entry: ArchiveEntry) -> bytes | None:
        instance = await frames.instance(entry.public_id)
        if instance.transfer_syntax == target or not frames.can_send_file(instance.transfer_syntax, target):
            return None
        try:
            return await frames.transcoded_file(instance, target, quality)
        except CodecError as e:
            log.warn("archive: instance {id} kept in {syntax}: {error}", id=entry.public_id,
                     syntax=instance.transfer_syntax, error=e)
        except Exception:  # noqa: BLE001 - one file that cannot be transcoded must not cut the archive
            log.failure("archive: instance {id} kept in {syntax}", id=entry.public_id,
                        syntax=instance.transfer_syntax)
        return None

    def fetch(entry: ArchiveEntry) -> bytes | None:
        return blockingCallFromThread(reactor, lambda: defer.ensureDeferred(transcoded(entry)))

    return fetch
