"""DICOM modalities (``DicomModalities``), written as Orthanc writes them: short form
``["AET", "host", port]`` (a fourth item: the manufacturer), long form an object with ``AET``,
``Host``, ``Port``, ``Manufacturer``, the ``Allow...`` switches, ``UseDicomTls``, ``LocalAet`` and
``Timeout``. Other keys are ignored, as Orthanc ignores them."""
from __future__ import annotations

from dataclasses import dataclass

from ..client.servers import parse_section

MANUFACTURERS = ("Generic", "GenericNoWildcardInDates", "GenericNoUniversalWildcard", "Vitrea", "GE",
                 "StoreScp", "ClearCanvas", "Dcm4Chee", "Xcs", "Agfa", "Siemens", "Syngo")
OBSOLETE_MANUFACTURERS = ("AgfaImpax", "EFilm2", "MedInria", "SyngoVia")
SWITCHES = ("AllowEcho", "AllowEventReport", "AllowFind", "AllowFindWorklist", "AllowGet", "AllowMove",
            "AllowNAction", "AllowStore", "AllowTranscoding")


class ModalityDefinitionError(ValueError):
    """A modality definition Orthanc would refuse; the message says what is wrong."""


@dataclass(frozen=True)
class Modality:
    name: str
    aet: str
    host: str
    port: int
    manufacturer: str = "Generic"
    allow_echo: bool = True
    allow_event_report: bool = True
    allow_find: bool = True
    allow_find_worklist: bool = True
    allow_get: bool = True
    allow_move: bool = True
    allow_n_action: bool = True
    allow_store: bool = True
    allow_transcoding: bool = True
    use_dicom_tls: bool = False
    local_aet: str = ""
    timeout: int = 0  # seconds; 0: DicomScuTimeout

    def allows(self, switch: str) -> bool:
        """``switch`` is one of SWITCHES (``AllowFind``...)."""
        return getattr(self, _attribute(switch))

    def public_json(self) -> dict:
        """Orthanc's ``/modalities?expand`` and ``/configuration`` form."""
        out = {"AET": self.aet, "Host": self.host, "Port": self.port, "Manufacturer": self.manufacturer,
               "LocalAet": self.local_aet, "Timeout": self.timeout, "UseDicomTls": self.use_dicom_tls}
        out.update({switch: self.allows(switch) for switch in SWITCHES})
        return dict(sorted(out.items()))

    def definition(self) -> dict:
        """The long form, to be kept in the index."""
        return self.public_json()


def _attribute(switch: str) -> str:
    return "allow_" + {"AllowNAction": "n_action"}.get(switch, "".join(
        "_" + c.lower() if c.isupper() else c for c in switch[len("Allow"):]).lstrip("_"))


def _port(value) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise ModalityDefinitionError(f"Port must be a TCP port number, not {value!r}")
    return value


def _text(value, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ModalityDefinitionError(f"{what} must be a non-empty string, not {value!r}")
    return value.strip()


def parse_modality(name: str, value) -> Modality:
    """A modality from its short or long form; ModalityDefinitionError saying what is wrong."""
    if not name or "/" in name:
        raise ModalityDefinitionError(f"a modality name must be non-empty without '/', not {name!r}")
    if isinstance(value, list):
        if len(value) not in (3, 4):
            raise ModalityDefinitionError('the short form is ["AET", "host", port] or ["AET", "host", port, '
                                          '"manufacturer"]')
        value = dict(zip(("AET", "Host", "Port", "Manufacturer"), value, strict=False))
    if not isinstance(value, dict):
        raise ModalityDefinitionError("a modality is a JSON list (short form) or object (long form)")
    manufacturer = value.get("Manufacturer", "Generic")
    if manufacturer in OBSOLETE_MANUFACTURERS:  # still read, as Orthanc reads them: as Generic
        manufacturer = "Generic"
    if manufacturer not in MANUFACTURERS:
        raise ModalityDefinitionError(f"Manufacturer must be one of {', '.join(MANUFACTURERS)}, not {manufacturer!r}")
    switches = {}
    commitment = value.get("AllowStorageCommitment")
    for switch in SWITCHES:
        default = commitment if commitment is not None and switch in ("AllowEventReport", "AllowNAction") else True
        flag = value.get(switch, default)
        if not isinstance(flag, bool):
            raise ModalityDefinitionError(f"{switch} must be true or false, not {flag!r}")
        switches[_attribute(switch)] = flag
    timeout = value.get("Timeout", 0)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0:
        raise ModalityDefinitionError(f"Timeout must be a number of seconds, not {timeout!r}")
    use_dicom_tls = value.get("UseDicomTls", False)
    if not isinstance(use_dicom_tls, bool):
        raise ModalityDefinitionError(f"UseDicomTls must be true or false, not {use_dicom_tls!r}")
    local_aet = value.get("LocalAet", "")
    if not isinstance(local_aet, str):
        raise ModalityDefinitionError("LocalAet must be a string")
    return Modality(name, _text(value.get("AET"), "AET"), _text(value.get("Host"), "Host"), _port(value.get("Port")),
                    manufacturer, **switches, use_dicom_tls=use_dicom_tls,
                    local_aet=local_aet.strip(), timeout=timeout)


def parse_modalities(section: dict, where: str = "DicomModalities") -> dict[str, Modality]:
    return parse_section(section, where, parse_modality)


