"""Every plugin interface of the daemon, in one place.

Providers are dropins of :mod:`dicomweb_daemon.plugins` (or any ``twisted/plugins``-style package on
the plugin path) that provide ``IPlugin`` and one of these interfaces, and carry a unique ``name``
that the configuration uses to select them.
"""
from zope.interface import Attribute, Interface


class IStorageArea(Interface):
    """Where the files live. Every method blocks: call it from the ``io`` pool."""

    name = Attribute("Name selected by the configuration key Backends.Storage")

    def open(settings):  # noqa: N805
        """Return a ready storage object for ``settings`` (runs once at start-up, before the reactor)."""

    def create(uuid, kind, source_path):  # noqa: N805
        """Store the file at ``source_path`` durably under ``(uuid, kind)``; the source may be moved.

        When this returns, the bytes survive a crash (io pool)."""

    def read(uuid, kind):  # noqa: N805
        """Return the whole content as bytes (io pool)."""

    def read_range(uuid, kind, start, end):  # noqa: N805
        """Return bytes ``[start, end)`` (io pool)."""

    def path(uuid, kind):  # noqa: N805
        """Return a local path to stream from, or None when the storage has no local files."""

    def remove(uuid, kind):  # noqa: N805
        """Delete the content; a missing one is not an error (io pool)."""

    def size(uuid, kind):  # noqa: N805
        """Return the stored size in bytes, or None if absent (io pool)."""

    def uuids():  # noqa: N805
        """Yield ``(uuid, kind)`` of everything stored, for recovery sweeps (io pool)."""


class IIndex(Interface):
    """The database of resources, tags, attachments, changes and exports.

    Every method blocks: call it through :func:`dicomweb_daemon.threads.in_db`."""

    name = Attribute("Name selected by the configuration key Backends.Index")

    def open(settings):  # noqa: N805
        """Return a ready index for ``settings`` (schema created or migrated; start-up thread)."""


class IMetadataStrategy(Interface):
    """How WADO-RS metadata of a study or series is produced (Full, MainDicomTags, Extrapolate)."""

    name = Attribute("Strategy name as in Orthanc's DicomWeb.StudiesMetadata")


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
