"""The answer of ``/tools/find`` for each resource found when ``ResponseContent`` says what it holds
(Orthanc >= 1.12.5): its ID and Type always, then the parts asked for, and nothing else (without
it, ``Expand`` gives the resource's JSON as ``/{level}/{id}`` does)."""
from __future__ import annotations

from ...index.resources import CHILD_KEY, PARENT_KEY
from ...index.schema import LEVEL_NUMBER
from .attachments import attachments_of
from .metadata import MetadataNames

#: The keys of a resource's JSON (``describe``) that each part of ResponseContent gives.
_KEYS_OF_PART = {
    "MainDicomTags": ("MainDicomTags", "PatientMainDicomTags"),
    "Children": tuple(CHILD_KEY.values()),
    "Parent": tuple(PARENT_KEY.values()),
    "Labels": ("Labels",),
    "Status": ("Status", "ExpectedNumberOfInstances"),
    "IsStable": ("IsStable",),
}


def find_content(index, names: MetadataNames, ids: list[str], level: str, parts: tuple[str, ...]) -> list[dict]:
    """(db thread) What ``parts`` ask of each of the resources ``ids`` of ``level``, in their order."""
    keys = {key for part in parts for key in _KEYS_OF_PART.get(part, ())}
    described = index.describe(ids) if keys else [{"ID": i, "Type": level} for i in ids]
    metadata = index.metadata_of(ids, LEVEL_NUMBER[level]) if "Metadata" in parts else {}
    out = []
    for item in described:
        answer = {"ID": item["ID"], "Type": item["Type"]}
        answer.update((k, v) for k, v in item.items() if k in keys)
        if "Metadata" in parts:
            answer["Metadata"] = {names.name_of(key): value for key, value in metadata.get(item["ID"], {}).items()}
        if "Attachments" in parts:
            answer["Attachments"] = [a.info() for _n, a in sorted(attachments_of(index, item["ID"], level).items())]
        if "IsProtected" in parts and level == "Patient":
            answer["IsProtected"] = index.is_protected(item["ID"])
        out.append(answer)
    return out
