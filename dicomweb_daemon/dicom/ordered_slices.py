"""The slices of a series in the order a viewer stacks them (Orthanc's deprecated but still used
``/series/{id}/ordered-slices``): a volume when every instance is one frame with its position and
the same orientation, at distinct places along the normal (sorted along it, PS3.3 C.7.6.2.1.1);
otherwise a sequence, by the instances' numbers (IndexInSeries, then InstanceNumber), each
instance's frames in turn."""
from __future__ import annotations

import numpy as np


def _numbers(text: str | None, count: int) -> np.ndarray | None:
    try:
        values = [float(v) for v in (text or "").split("\\")]
    except ValueError:
        return None
    return np.array(values) if len(values) == count else None


def _volume_order(instances: list[dict]) -> list[dict] | None:
    """The instances sorted along the normal of their common orientation; None if they are not a volume."""
    if len(instances) < 2:
        return None
    places = []
    normal = None
    for item in instances:
        tags = item["MainDicomTags"]
        if int(tags.get("NumberOfFrames") or 1) != 1:
            return None
        orientation = _numbers(tags.get("ImageOrientationPatient"), 6)
        position = _numbers(tags.get("ImagePositionPatient"), 3)
        if orientation is None or position is None:
            return None
        own = np.cross(orientation[:3], orientation[3:])
        if normal is None:
            normal = own
        elif not np.allclose(own, normal, atol=1e-3):
            return None
        places.append(float(position @ normal))
    if len({round(p, 4) for p in places}) != len(places):  # two slices at one place: not a volume
        return None
    return [item for _place, item in sorted(zip(places, instances, strict=True), key=lambda pair: pair[0])]


def _sequence_key(item: dict) -> tuple:
    index = item.get("IndexInSeries")
    try:
        number = int(item["MainDicomTags"].get("InstanceNumber") or 0)
    except ValueError:
        number = 0
    return (index if index is not None else number, number, item["ID"])


def ordered_slices(instances: list[dict]) -> dict:
    """Orthanc's answer for the instances of a series (each as /instances/{id} describes it)."""
    ordered = _volume_order(instances)
    kind = "Volume" if ordered is not None else "Sequence"
    if ordered is None:
        ordered = sorted(instances, key=_sequence_key)
    slices, short = [], []
    for item in ordered:
        frames = int(item["MainDicomTags"].get("NumberOfFrames") or 1)
        slices += [f"/instances/{item['ID']}/frames/{n}" for n in range(frames)]
        short.append([item["ID"], 0, frames])
    return {"Dicom": [f"/instances/{item['ID']}/file" for item in ordered], "Slices": slices,
            "SlicesShort": short, "Type": kind}
