"""twistd dropin: ``twistd dicomweb`` builds its service in :mod:`dicomweb_daemon.tap`."""
from twisted.application.service import ServiceMaker

dicomweb = ServiceMaker(
    "dicomweb-daemon",
    "dicomweb_daemon.tap",
    "DICOM store and DICOMweb server with an Orthanc-compatible REST API",
    "dicomweb",
)
