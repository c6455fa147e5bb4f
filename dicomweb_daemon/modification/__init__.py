"""Orthanc's ``/modify`` and ``/anonymize`` as a pure engine: a request parsed once
(``request.parse_modification``), a job's UID map (``uids.UidMap``), and each instance rewritten in a
cpu thread (``apply.apply``, ``apply.dry_run``). Routes and jobs live elsewhere."""
from .apply import apply, dry_run, prepare_uids
from .request import Modification, parse_modification
from .uids import Pseudonyms, UidMap

__all__ = ["Modification", "Pseudonyms", "UidMap", "apply", "dry_run", "parse_modification", "prepare_uids"]
