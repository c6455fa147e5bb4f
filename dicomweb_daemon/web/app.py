"""Assemble the HTTP site: route families on one Klein app, behind the root resource."""
from __future__ import annotations

from . import dicomweb
from .dispatch import AppResource
from .errors import render_error
from .ohif import OhifRoutes
from .pages.routes import PageRoutes
from .rest.archive import ArchiveRoutes
from .rest.attachments import AttachmentRoutes
from .rest.bulk_content import BulkContentRoutes
from .rest.create_dicom import CreateDicomRoutes
from .rest.dicom_server import DicomServerRoutes
from .rest.images import ImageRoutes
from .rest.instances import InstanceRoutes
from .rest.jobs import JobRoutes
from .rest.labels import LabelRoutes
from .rest.level_tags import LevelTagsRoutes
from .rest.metadata import MetadataRoutes
from .rest.modalities import ModalityRoutes
from .rest.modification import ModificationRoutes
from .rest.operations import OperationsRoutes
from .rest.peers import PeerRoutes
from .rest.queries import QueryRoutes
from .rest.reconstruct import ReconstructRoutes
from .rest.resources import ResourceRoutes
from .rest.storage_commitment import StorageCommitmentRoutes
from .rest.system import SystemRoutes
from .rest.tool_list import ToolListRoutes
from .rest.tools import ToolsRoutes
from .rest.uploads import UploadRoutes
from .root import RootResource
from .routing import mount
from .site import DaemonSite
from .webdav.routes import WebDavRoutes


def build_app(daemon):
    uploads = UploadRoutes(daemon)
    families = [ResourceRoutes(daemon), uploads, InstanceRoutes(daemon), ToolsRoutes(daemon),
                SystemRoutes(daemon), MetadataRoutes(daemon), AttachmentRoutes(daemon),
                ArchiveRoutes(daemon), ImageRoutes(daemon), *dicomweb.families(daemon)]
    families += [LevelTagsRoutes(daemon), BulkContentRoutes(daemon), WebDavRoutes(daemon, uploads),
                 JobRoutes(daemon), PeerRoutes(daemon)]
    modalities = ModalityRoutes(daemon)
    families += [modalities, QueryRoutes(daemon, modalities), StorageCommitmentRoutes(daemon),
                 DicomServerRoutes(daemon), ModificationRoutes(daemon), CreateDicomRoutes(daemon),
                 ReconstructRoutes(daemon), LabelRoutes(daemon), OperationsRoutes(daemon), PageRoutes(daemon),
                 OhifRoutes(daemon)]
    return mount([*families, ToolListRoutes(families, daemon.settings)])


def build_site(daemon) -> DaemonSite:
    root = RootResource(AppResource(build_app(daemon), render_error), daemon.settings, daemon.metrics)
    max_body = daemon.settings.MaximumBodySize * 1024 * 1024
    return DaemonSite(root, daemon.spool, daemon.body_memory, max_body, http2=daemon.settings.EnableHttp2,
                      access_log=daemon.settings.HttpAccessLog, timeout=daemon.settings.HttpRequestTimeout)
