"""/series/{id}/ordered-slices as Orthanc answers it: a volume sorted along the normal of its
slices' common orientation; a sequence (by instance number, each instance's frames in turn) when
the series is not a volume: one multi-frame instance, slices at one place, no positions."""
from __future__ import annotations

from pydicom.uid import generate_uid

from tests.dicom_files import make_ct


def _series(daemon, slices: list[dict]) -> tuple[str, list[str]]:
    study, series = generate_uid(), generate_uid()
    ids = [daemon.store(make_ct("SLICES", study_uid=study, series_uid=series, instance_number=n + 1, size=8,
                                extra=extra))["ID"] for n, extra in enumerate(slices)]
    return daemon.get(f"/instances/{ids[0]}").json()["ParentSeries"], ids


def test_a_volume_goes_along_its_normal(daemon):
    axial = [1, 0, 0, 0, 1, 0]
    series, ids = _series(daemon, [{"ImageOrientationPatient": axial, "ImagePositionPatient": [0, 0, z]}
                                   for z in (30.0, 10.0, 20.0)])
    answer = daemon.get(f"/series/{series}/ordered-slices").json()
    expected = [ids[1], ids[2], ids[0]]  # z = 10, 20, 30
    assert answer == {"Type": "Volume", "Dicom": [f"/instances/{i}/file" for i in expected],
                      "Slices": [f"/instances/{i}/frames/0" for i in expected],
                      "SlicesShort": [[i, 0, 1] for i in expected]}


def test_not_a_volume_is_a_sequence_by_number(daemon):
    same_place = {"ImageOrientationPatient": [1, 0, 0, 0, 1, 0], "ImagePositionPatient": [0, 0, 5]}
    series, ids = _series(daemon, [same_place, same_place])
    answer = daemon.get(f"/series/{series}/ordered-slices").json()
    assert answer["Type"] == "Sequence" and answer["SlicesShort"] == [[ids[0], 0, 1], [ids[1], 0, 1]]
    series, ids = _series(daemon, [{}, {}])  # no positions
    assert daemon.get(f"/series/{series}/ordered-slices").json()["Dicom"] == [f"/instances/{i}/file" for i in ids]


def test_frames_of_a_multiframe_instance(daemon):
    import io

    import numpy as np
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(make_ct("SLICES-MF", size=8)))
    ds.NumberOfFrames = 3
    ds.PixelData = np.zeros((3, 8, 8), dtype=np.uint16).tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    answer = daemon.store(out.getvalue())
    slices = daemon.get(f"/series/{answer['ParentSeries']}/ordered-slices").json()
    assert slices["Type"] == "Sequence" and slices["SlicesShort"] == [[answer["ID"], 0, 3]]
    assert slices["Slices"] == [f"/instances/{answer['ID']}/frames/{n}" for n in range(3)]
    assert daemon.get("/series/nope/ordered-slices").status_code == 404
