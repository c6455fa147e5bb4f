"""Every plugin interface of the daemon, in one place.

Providers are dropins of :mod:`dicomweb_daemon.plugins` (or any ``twisted/plugins``-style package on
the plugin path) that provide ``IPlugin`` and one of these interfaces, and carry a unique ``name``
that the configuration uses to select them.
"""
from zope.interface import Attribute, Interface


class IStorageArea(Interface):
    """Where the files live. Every method blocks, and runs in the thread that needs it: io threads
    (answers, deletions), ingest and store threads (ingest), cpu threads (a frame is read in the cpu
    job that decodes it). A storage must allow calls from several threads at once.

    A storage may provide optional capabilities, each its own interface below (checked with
    ``providedBy``): :class:`IDirectWrites`, :class:`IStaging`, :class:`IReachable`."""

    name = Attribute("Name selected by the configuration key Backends.Storage")

    def open(settings):  # noqa: N805
        """Return a ready storage object for ``settings`` (runs once at start-up, before the reactor)."""

    def create(uuid, kind, source_path):  # noqa: N805
        """Store the file at ``source_path`` durably under ``(uuid, kind)``; the source may be moved.

        When this returns, the bytes survive a crash."""

    def read(uuid, kind):  # noqa: N805
        """Return the whole content as bytes."""

    def read_range(uuid, kind, start, end):  # noqa: N805
        """Return bytes ``[start, end)``."""

    def path(uuid, kind):  # noqa: N805
        """Return a local path to stream from, or None when the storage has no local files."""

    def remove(uuid, kind):  # noqa: N805
        """Delete the content; a missing one is not an error."""

    def size(uuid, kind):  # noqa: N805
        """Return the stored size in bytes, or None if absent."""

    def uuids():  # noqa: N805
        """Yield ``(uuid, kind)`` of everything stored (the one-time sweep of old data folders)."""


class IDirectWrites(Interface):
    """Optional capability of a storage area: it stores bytes already in memory itself (small or
    shared STOW-RS parts), without a temp file given to ``create``."""

    def write(uuid, kind, data, waiting=None):  # noqa: N805
        """Store the bytes-like ``data`` durably under ``(uuid, kind)``; call ``waiting()`` (when
        given) once the bytes are handed over and only their durability is awaited (the fsync, the
        upload's answer): a thread that waits for that moment can then take the CPU (a parse) without
        holding up the write for want of the GIL.

        Need not be atomic: the index row comes after it returns, and a crash meanwhile leaves a
        file the start-up recovery removes (the file journal names it)."""


class IStaging(Interface):
    """Optional capability of a storage area with local files: ingest spools uploads into its
    ``staging_folder`` so that ``create`` takes them by a rename, and may start a file's way to the
    disk while it is parsed."""

    staging_folder = Attribute("A folder on the storage's own filesystem for files on their way in")

    def prepare(source_path):  # noqa: N805
        """Start making the file at ``source_path`` durable (its fsync), before ``create`` is given it."""


class IReachable(Interface):
    """Optional capability of a storage area kept elsewhere (an object store): readiness asks it."""

    def check():  # noqa: N805
        """Raise, saying why, when the storage cannot be reached now (blocking: io threads)."""


class IIndex(Interface):
    """The database of resources, tags, attachments, changes and exports.

    Every method blocks. Reads run in any db thread (``in_db``). Writes run in the db_write thread
    (``in_db_write``), except ingest's (``store_many``, ``reserve_files``, ``put_attachment``,
    ``set_compression``), which
    run in ingest's own threads so that the files of a batch and their index rows are written by the same thread:
    an index orders its writes itself (SQLite: one at a time; PostgreSQL: by the scope of each,
    index/locking.py).

    The file journal: every file ingest places in the storage is first recorded as pending
    (``reserve_files``), and every file a write stops referencing (deleted, replaced, recycled) is
    recorded in the same transaction; rows are forgotten once the file is referenced or removed.
    After a crash, start-up looks at the pending files of its ``owner`` only: that costs the
    number of files in flight, not the size of the storage."""

    name = Attribute("Name selected by the configuration key Backends.Index")

    def open(settings):  # noqa: N805
        """Return a ready index for ``settings`` (schema created or migrated; start-up thread)."""

    owner = Attribute("Who this daemon is in the file journal (host and HTTP port): a daemon "
                      "recovers only its own pending files")

    # -- ingest's writes: ingest threads ------------------------------------------------------
    def store_many(items, overwrite=False, origin=None, max_storage_mb=0, max_patients=0,  # noqa: N805
                   recycle=False):
        """Index ``[(ParsedInstance, file uuid[, StoredForm or None])]`` in one transaction; a StoreResult
        or error each. A StoredForm (storage/compression.py) says the file is stored compressed:
        its compression, and the size and MD5 of the stored bytes.

        Over a quota, ``recycle`` deletes the least recently updated unprotected patients first. The
        files it stops referencing (replaced, recycled) are recorded as pending in the transaction."""

    def reserve_files(uuids):  # noqa: N805
        """Record file names as pending before their files are written (one commit)."""

    def put_attachment(public_id, content_type, uuid, size, md5, if_match=None, strict=False,  # noqa: N805
                       stored=None):
        """Attach a stored file (its name journaled; ``stored``: its StoredForm when compressed);
        ``(revision, replaced file or None)``, the replaced one recorded as pending in the
        transaction. Revisions checked as for metadata."""

    def set_compression(public_id, content_type, uuid, new_uuid, stored):  # noqa: N805
        """Point an attachment (content type 1: an instance's DICOM file) still in file ``uuid`` at
        ``new_uuid`` (journaled), the same content stored as ``stored`` says (None: as it came);
        ``uuid`` recorded as pending in the transaction. False when the attachment changed meanwhile."""

    # -- writes: the db_write thread (in_db_write) ----------------------------------------------
    def delete(public_id, level):  # noqa: N805
        """Delete a resource, its descendants and emptied ancestors: (file uuids, remaining ancestor).

        The files are recorded as pending in the same transaction, to be removed after it."""

    def forget_files(uuids):  # noqa: N805
        """Drop pending rows: their files are referenced by an instance now, or removed."""

    def mark_journal_complete():  # noqa: N805
        """Record that every file in the storage is known to the index or to the journal."""

    def mark_stable(stable_age):  # noqa: N805
        """Mark resources without news for ``stable_age`` seconds as stable, logging Stable* changes."""

    def put_user_metadata(public_id, key, value, if_match=None, strict=False):  # noqa: N805
        """Set a user-defined metadata (its number as text); its new revision. With ``strict``
        (CheckRevisions), changing an existing one needs ``if_match`` = (revision, md5): Conflict else."""

    def delete_user_metadata(public_id, key, if_match=None, strict=False):  # noqa: N805
        """Remove a user-defined metadata, revisions checked as for ``put_user_metadata``."""

    def delete_attachment(public_id, content_type, if_match=None, strict=False):  # noqa: N805
        """Detach a user-defined attachment; its file uuid, recorded as pending in the transaction."""

    def set_protected(public_id, protected):  # noqa: N805
        """Protect a patient against recycling, or not."""

    def clear_changes():  # noqa: N805
        """Empty the changes log."""

    def clear_exports():  # noqa: N805
        """Empty the exports log."""

    def log_export(public_id, remote):  # noqa: N805
        """Record that a resource was sent to ``remote``."""

    # -- reads: any db thread (in_db) ---------------------------------------------------------
    def existing_instances(public_ids):  # noqa: N805
        """The subset of instance IDs already stored."""

    def level_of(public_id):  # noqa: N805
        """"Patient", "Study", "Series", "Instance", or None when unknown."""

    def internal_of(public_id, level):  # noqa: N805
        """The internal key of a resource; UnknownResource when absent (or of another level)."""

    def list_ids(level, since, limit):  # noqa: N805
        """Public IDs of a level in creation order, paged."""

    def relatives(public_id, level, target):  # noqa: N805
        """IDs at ``target`` level under (or the one above) a resource."""

    def describe(public_ids):  # noqa: N805
        """Orthanc's JSON of each resource, in order."""

    def main_tags(internals):  # noqa: N805
        """``{internal: {keyword: value}}`` of the indexed main tags."""

    def instance(public_id):  # noqa: N805
        """What is stored about one instance's file: uuid, size, md5, compression (and then the
        compressed size and MD5), syntax, frame table, origin..."""

    def instances_under(public_ids):  # noqa: N805
        """Every instance under resources, once, with its file and its ancestors' main tags."""

    def core_metadata(public_id):  # noqa: N805
        """``(level, {name: value})``: the metadata the daemon keeps about a resource (Orthanc's names)."""

    def user_metadata(public_id):  # noqa: N805
        """``{number as text: (value, revision)}`` of user-defined metadata."""

    def metadata_of(public_ids, level):  # noqa: N805
        """``{public ID: {name: value}}``: every metadata of many resources of a level (core ones by
        Orthanc's names, user ones by their numbers as text)."""

    def attachments(public_id):  # noqa: N805
        """``{content type: {uuid, size, md5, revision, compression, compressed_size, compressed_md5}}``
        of user-defined attachments."""

    def is_protected(public_id):  # noqa: N805
        """Whether a patient is protected."""

    def statistics(public_id):  # noqa: N805
        """Counts and sizes of everything (None) or of a resource's subtree: disk sizes of the stored
        bytes, uncompressed sizes of the content."""

    def fold_totals():  # noqa: N805
        """(maintenance) Keep the running totals that ``statistics()`` reads compact."""

    def changes(since, limit, types=(), to=None, backwards=False):  # noqa: N805
        """Orthanc's /changes answer (with its ExtendedChanges: by type, up to ``to``)."""

    def last_changes(limit):  # noqa: N805
        """Orthanc's /changes?last answer."""

    def exports(since, limit):  # noqa: N805
        """Orthanc's /exports answer."""

    def find(level, query, case_sensitive=True, limit=0, since=0, labels=(), labels_constraint="All",  # noqa: N805
             scope=None):
        """Public IDs matching an Orthanc /tools/find query (``scope``: its extended parts, find_scope.py)."""

    def count(level, query, labels=(), labels_constraint="All", scope=None):  # noqa: N805
        """How many resources ``find`` gives for the same search, case-insensitively (/tools/count-resources)."""

    def study_months():  # noqa: N805
        """The months (``YYYYMM``) of the studies' StudyDate (the WebDAV share's by-dates view)."""

    def lookup(value):  # noqa: N805
        """Resources whose identifying tag equals ``value``."""

    def requested_tags(public_ids, names):  # noqa: N805
        """``{id: {name: value}}`` of main, computed and stored tags."""

    def unreferenced_files(uuids):  # noqa: N805
        """Those of ``uuids`` that no instance references (crash leftovers)."""

    def pending_files(owner=None):  # noqa: N805
        """The pending file names of ``owner`` (all owners: None), for recovery."""

    def journal_complete():  # noqa: N805
        """Whether the journal has covered every file since the storage was last swept whole."""

    def instance_files_after(internal, limit):  # noqa: N805
        """(internal, file uuid, compression, md5) of the next instances: a walk over all of them."""

    def replace_summaries(rows):  # noqa: N805
        """Instances' metadata and frame ranges derived again from their files (invalidate-tags)."""

    def qido_extras_missing(after, limit):  # noqa: N805
        """(internal, QIDO_EXTRAS) of instances stored before the index kept them apart ([]: none
        left; None: noted done before)."""

    def keep_qido_extras(rows):  # noqa: N805
        """Those QIDO_EXTRAS kept; none given: noted as done for every instance."""

    def series_extras_missing(after, limit):  # noqa: N805
        """(internal, QIDO_EXTRAS of its first instance) of series made before each series kept its
        own ([]: none left; None: noted done before)."""

    def keep_series_extras(rows):  # noqa: N805
        """Those series' QIDO_EXTRAS kept; none given: noted as done for every series."""

    def tags_missing(after, limit):  # noqa: N805
        """(internal, main tags in one piece) of resources made before each kept them ([]: none
        left; None: noted done before)."""

    def keep_tags(rows):  # noqa: N805
        """Those resources' main tags kept in one piece; none given: noted as done for every one."""

    # -- storage commitment -------------------------------------------------------------------
    def sop_classes_of(sop_uids):  # noqa: N805
        """{SOP instance UID: (SOP class UID, public ID)} of the instances stored here."""

    def create_commitment(transaction, remote_aet, keep):  # noqa: N805
        """A storage commitment request sent, Pending until its report arrives."""

    def complete_commitment(transaction, success, failures):  # noqa: N805
        """The report of a request we sent; False when it is not kept."""

    def commitment(transaction):  # noqa: N805
        """A request we sent and its report, or None."""

    # -- DICOMweb reads: any db thread (in_db) ------------------------------------------------
    def qido(query):  # noqa: N805
        """QIDO-RS: the DICOM JSON of each matching study, series or instance (no file is read)."""

    def qido_json(query):  # noqa: N805
        """QIDO-RS: the same results, each as its DICOM JSON text."""

    def qido_statement(query):  # noqa: N805
        """The one SQL statement that answers a QIDO-RS search on identifiers only, or None (no I/O:
        any thread, the reactor's included); ``qido_render`` turns the rows it selects into texts."""

    def qido_render(statement, rows):  # noqa: N805
        """The JSON texts of a ``qido_statement``'s rows (a thread, or the reactor for a few rows)."""

    reactor_reads = Attribute("None, or reads the reactor thread runs itself without blocking "
                              "(index/pg_reactor.ReactorReads: ``await query(sql, params)``)")

    def wado_instances(study, series=None, sop=None, columns=()):  # noqa: N805
        """Instances named by UIDs, in series then InstanceNumber order, as dicts of ``columns``."""

    def wado_resource_ids(study, series=None, sop=None):  # noqa: N805
        """Orthanc IDs of the resources named by UIDs."""

    def rendered_instances(study, series=None, sop=None):  # noqa: N805
        """Orthanc IDs of the instances named by UIDs, by SeriesNumber then InstanceNumber."""

    def instance_by_sop(sop):  # noqa: N805
        """The instance with this SOPInstanceUID (WADO-URI)."""

    def metadata_blob(public_id):  # noqa: N805
        """The compressed DICOM JSON of one instance, as computed at ingest."""


class IMetadataStrategy(Interface):
    """How WADO-RS metadata of a study or series is produced (Full, MainDicomTags, Extrapolate)."""

    name = Attribute("Strategy name as in Orthanc's DicomWeb.StudiesMetadata")

    def fetch(index, study, series, sop, extrapolated_tags):  # noqa: N805
        """Read what the answer needs from the index (db pool); return a MetadataSource."""

    def render(source, root):  # noqa: N805
        """The DICOM JSON of each instance, as bytes, with ``root`` as base of bulk URIs (cpu pool)."""


class ICodec(Interface):
    """Decode from / encode to transfer syntaxes (cpu pool)."""

    name = Attribute("Codec name")

    def can_decode(transfer_syntax):  # noqa: N805
        """True when this codec decodes pixel data stored in ``transfer_syntax``."""

    def can_encode(transfer_syntax):  # noqa: N805
        """True when this codec encodes pixel data into ``transfer_syntax``."""

    def decode_frame(header, frame, transfer_syntax):  # noqa: N805
        """Decode one frame (its fragments joined when encapsulated) stored in ``transfer_syntax``.

        ``header`` is a pydicom Dataset carrying the Image Pixel module (Rows, Columns, BitsAllocated,
        PhotometricInterpretation...). Returns ``(array, changes)``: a native-endian numpy array shaped
        ``(rows, columns)`` or ``(rows, columns, samples)`` and the pixel-module attributes that
        describe it when they differ from the header (e.g. ``{"PhotometricInterpretation": "RGB"}``
        after a YBR_FULL_422 JPEG). Raises ValueError on corrupt data (cpu pool)."""

    def encode_frame(header, array, transfer_syntax, quality):  # noqa: N805
        """Encode one decoded frame into ``transfer_syntax``; ``header`` describes ``array``.

        ``quality`` (1-100 or None) steers lossy syntaxes only. Returns ``(data, changes)``: the
        encoded bytes and the attributes to set on the dataset (PhotometricInterpretation,
        LossyImageCompression...). Raises ValueError when this array cannot be encoded (cpu pool)."""
