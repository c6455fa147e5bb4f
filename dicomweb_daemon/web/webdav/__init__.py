"""Orthanc's WebDAV share of the store."""
