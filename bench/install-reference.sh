#!/bin/sh
# Install the reference for side-by-side benchmarks: Orthanc 1.10.1 + DICOMweb plugin (+ GDCM),
# Debian packages, and the Python packages the yardstick's data set generator needs.
set -e
if ! command -v Orthanc >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq orthanc orthanc-dicomweb orthanc-gdcm
fi
Orthanc --version | head -1
