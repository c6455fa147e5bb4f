"""dicomweb-daemon: a DICOM store and DICOMweb server on Twisted."""

__version__ = "0.1.0"

# The Orthanc release whose REST API this daemon reproduces (reported as /system "Version").
ORTHANC_API_VERSION = "1.12.5"
ORTHANC_REST_API_LEVEL = 25
DICOMWEB_PLUGIN_VERSION = "1.20"  # 1.20: the DICOMweb client answers what it sent, per level
