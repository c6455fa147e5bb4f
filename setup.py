"""Packaging for dicomweb-daemon.

The twistd dropin lives in ``twisted/plugins/``; install in a mode that keeps that directory on
``sys.path`` (``pip install .`` or ``pip install -e . --config-settings editable_mode=compat``) so
that ``twistd dicomweb`` finds it.
"""
from setuptools import find_packages, setup

setup(
    name="dicomweb-daemon",
    version="0.1.0",
    description="DICOM store and DICOMweb server on Twisted, with an Orthanc-compatible REST API",
    python_requires=">=3.10",
    packages=find_packages(include=["dicomweb_daemon", "dicomweb_daemon.*"]) + ["twisted.plugins"],
    package_data={"twisted": ["plugins/dicomweb_plugin.py"], "dicomweb_daemon.anonymization": ["tables/*.json"],
                  "dicomweb_daemon.web.pages": ["static/*"]},
    install_requires=[
        "twisted[tls,http2]>=23.8",
        "klein>=23.5",
        "treq>=23.11",
        "zope.interface>=6",
        "pydicom>=3.0",
        "numpy>=1.24",
        "pillow>=10",
        "pylibjpeg>=2.0",
        "pylibjpeg-libjpeg>=2.1",
        "pylibjpeg-openjpeg>=2.3",
        "pylibjpeg-rle>=2.0",
        "pyjpegls>=1.5",
        "imagecodecs>=2024.1",
        "pynetdicom>=3.0,<3.1",  # dimse/tuning.py wraps its internals
        "prometheus_client>=0.17",
        "ujson>=5.10",
    ],
    extras_require={
        "postgresql": ["psycopg[binary]>=3.1"],
        "object-storage": ["obstore>=0.12", "cryptography>=42"],
        "test": ["pytest>=8", "pytest-twisted>=1.14", "pytest-xdist>=3.5", "pydicom-data", "requests>=2.31",
                 "ruff>=0.5",
                 "dicomweb-client>=0.59", "psycopg[binary]>=3.1", "obstore>=0.12", "cryptography>=42",
                 "moto[server]>=5", "azure-storage-blob>=12",
                 "httpx[http2]>=0.27", "selenium>=4.20"],
    },
)
