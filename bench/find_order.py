"""Orthanc 1.12.5's extended find against a running daemon (any size, any engine): a study list
ordered by a tag, a page of it, one filtered and ordered by the same tag, the answer's content as a
study browser asks it (Orthanc Explorer 2's study list), and a count. Orthanc 1.10.1 has no
OrderBy, so there is no side by side; the plain search is the reference.

    python bench/find_order.py --url http://127.0.0.1:8042 [--reps 15]

Prints p50 / p95 ms per query and the number of results. Point it at a big index: for instance the
daemon that ``bench/qido_scale.py --keep`` leaves a database for (1,000,000 instances).
"""
from __future__ import annotations

import argparse
import statistics
import time

import requests

BY_DATE = [{"Type": "DicomTag", "Key": "StudyDate", "Direction": "DESC"}]
QUERIES = [
    ("studies, Limit 100 (no order: the reference)", "/tools/find", {"Level": "Study", "Query": {}, "Limit": 100}),
    ("studies by StudyDate DESC, Limit 100", "/tools/find",
     {"Level": "Study", "Query": {}, "Limit": 100, "OrderBy": BY_DATE}),
    ("studies by PatientName ASC, Limit 100", "/tools/find",
     {"Level": "Study", "Query": {}, "Limit": 100,
      "OrderBy": [{"Type": "DicomTag", "Key": "PatientName", "Direction": "ASC"}]}),
    ("studies by StudyDate DESC, Since 1000, Limit 100", "/tools/find",
     {"Level": "Study", "Query": {}, "Since": 1000, "Limit": 100, "OrderBy": BY_DATE}),
    ("studies of 2018 by StudyDate DESC, Limit 100", "/tools/find",
     {"Level": "Study", "Query": {"StudyDate": "20180101-20181231"}, "Limit": 100, "OrderBy": BY_DATE}),
    ("series by StudyDate DESC then SeriesTime, Limit 100", "/tools/find",
     {"Level": "Series", "Query": {}, "Limit": 100,
      "OrderBy": [*BY_DATE, {"Type": "DicomTag", "Key": "SeriesTime", "Direction": "ASC"}]}),
    ("study list as a browser asks it (ordered, ResponseContent, RequestedTags)", "/tools/find",
     {"Level": "Study", "Query": {}, "Limit": 100, "OrderBy": BY_DATE,
      "ResponseContent": ["MainDicomTags", "Metadata", "Children", "Labels", "Status", "IsStable"],
      "RequestedTags": ["ModalitiesInStudy", "NumberOfStudyRelatedInstances"]}),
    ("count-resources, every study", "/tools/count-resources", {"Level": "Study", "Query": {}}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8042", help="the daemon's REST root")
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    session = requests.Session()
    print(f"{session.get(args.url + '/statistics').json()['CountStudies']} studies at {args.url}\n")
    print("| query | p50 ms | p95 ms | results |\n|---|---:|---:|---:|")
    for name, path, body in QUERIES:
        times, answer = [], None
        for _ in range(args.reps + 1):  # the first run warms up
            start = time.perf_counter()
            r = session.post(args.url + path, json=body)
            times.append((time.perf_counter() - start) * 1000)
            r.raise_for_status()
            answer = r.json()
        times = sorted(times[1:])
        results = answer["Count"] if isinstance(answer, dict) else len(answer)
        print(f"| {name} | {statistics.median(times):.1f} | {times[int(0.95 * (len(times) - 1))]:.1f} | {results} |")


if __name__ == "__main__":
    main()
