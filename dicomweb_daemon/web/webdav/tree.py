"""The virtual filesystem Orthanc's WebDAV share shows (Orthanc >= 1.8): the same resources under
several views, rebuilt from the index at every request (nothing is kept between requests):

    by-patients/<PatientID - PatientName>/<StudyDate - StudyDescription>/<Modality - SeriesDescription>/<SOP>.dcm
    by-studies/<PatientID - PatientName - StudyDescription>/<Modality - SeriesDescription>/<SOP>.dcm
    by-dates/<YYYY>/<YYYY-MM>/<PatientID - PatientName - StudyDescription>/<series>/<SOP>.dcm
    by-uids/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm
    uploads/      files put here are stored (DICOM files or ZIPs of them), then gone

Names are made safe for any file system, and unique within their folder (" (2)" for the second of
a name). The calls block: run them in a db thread.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ...storage.archive import folder_name

VIEWS = ("by-dates", "by-patients", "by-studies", "by-uids", "uploads")
ROOT = "webdav"


@dataclass
class Node:
    """A folder or a file of the share."""

    name: str
    folder: bool = True
    public_id: str | None = None  # the resource a folder or file stands for
    level: str | None = None
    size: int = 0
    last_update: str = ""  # Orthanc's YYYYMMDDTHHMMSS
    trail: tuple[str, ...] = field(default=())  # the view and the path segments leading here


class NotFound(LookupError):
    """No such folder or file in the share."""


class WebDavTree:
    """Resolves paths of the share and lists folders, from the index (db thread)."""

    def __init__(self, index):
        self.index = index

    def resolve(self, segments: list[str]) -> Node:
        """The node at ``segments`` (below the share's root); NotFound when there is none."""
        node = Node(ROOT)
        for name in segments:
            if not node.folder:
                raise NotFound("/".join(segments))
            found = next((child for child in self.children(node) if child.name == name), None)
            if found is None:
                if node.trail[:1] == ("uploads",):
                    found = Node(name, trail=(*node.trail, name))  # folders being uploaded exist anyway
                else:
                    raise NotFound("/".join(segments))
            node = found
        return node

    def children(self, node: Node) -> list[Node]:
        if not node.folder:
            return []
        trail = node.trail
        if not trail:
            return [Node(view, trail=(view,)) for view in VIEWS]
        view, depth = trail[0], len(trail)
        if view == "uploads":
            return []
        if view == "by-dates":
            if depth == 1:
                years = sorted({month[:4] for month in self.index.study_months()})
                return [Node(year, trail=(view, year)) for year in years]
            if depth == 2:
                months = sorted(m for m in self.index.study_months() if m.startswith(trail[1]))
                return [Node(f"{m[:4]}-{m[4:6]}", trail=(view, trail[1], f"{m[:4]}-{m[4:6]}")) for m in months]
            if depth == 3:
                month = trail[2].replace("-", "")
                ids = self.index.find("Study", {"StudyDate": f"{month}01-{month}31"})
                return self._named(ids, _study_name, trail)
        if node.level is None:  # the top folder of a view
            if view in ("by-patients",):
                return self._named(self.index.list_ids("Patient", 0, 0), _patient_name, trail)
            return self._named(self.index.list_ids("Study", 0, 0),
                               _uid_name("StudyInstanceUID") if view == "by-uids" else _study_name, trail)
        below = {"Patient": "Study", "Study": "Series", "Series": "Instance"}.get(node.level)
        if below is None:
            return []
        ids = self.index.relatives(node.public_id, node.level, below)
        namer = {"Study": _study_in_patient_name, "Series": _series_name, "Instance": _instance_name}[below]
        if view == "by-uids" and below == "Series":
            namer = _uid_name("SeriesInstanceUID")
        return self._named(ids, namer, trail)

    def _named(self, ids: list[str], namer, trail: tuple[str, ...]) -> list[Node]:
        """The resources as nodes, each with a name unique in the folder."""
        nodes, used = [], {}
        for item in self.index.describe(ids) if ids else []:
            name = namer(item)
            count = used.get(name, 0) + 1
            used[name] = count
            if count > 1:
                stem, dot, ext = name.rpartition(".") if item["Type"] == "Instance" else (name, "", "")
                name = f"{stem} ({count}){dot}{ext}"
            folder = item["Type"] != "Instance"
            nodes.append(Node(name, folder, item["ID"], item["Type"], 0 if folder else item.get("FileSize", 0),
                              item.get("LastUpdate", ""), (*trail, name)))
        return nodes


def _tags(item: dict, key: str = "MainDicomTags") -> dict:
    return item.get(key) or {}


def _join(*parts: str) -> str:
    """The non-empty parts joined by " - ", safe as a file name."""
    return folder_name(" - ".join(p.strip() for p in parts if p and p.strip()))


def _patient_name(item: dict) -> str:
    tags = _tags(item)
    return _join(tags.get("PatientID", ""), tags.get("PatientName", ""))


def _study_name(item: dict) -> str:
    patient, study = _tags(item, "PatientMainDicomTags"), _tags(item)
    return _join(patient.get("PatientID", ""), patient.get("PatientName", ""),
                 study.get("StudyDescription", "") or study.get("StudyDate", ""))


def _study_in_patient_name(item: dict) -> str:
    study = _tags(item)
    return _join(study.get("StudyDate", ""), study.get("StudyDescription", "") or study.get("StudyID", ""))


def _series_name(item: dict) -> str:
    series = _tags(item)
    return _join(series.get("Modality", ""), series.get("SeriesDescription", "") or series.get("SeriesNumber", ""))


def _instance_name(item: dict) -> str:
    return folder_name(_tags(item).get("SOPInstanceUID", item["ID"])) + ".dcm"


def _uid_name(keyword: str):
    return lambda item: folder_name(_tags(item).get(keyword, item["ID"]))
