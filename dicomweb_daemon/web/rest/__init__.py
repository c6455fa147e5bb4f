"""Orthanc-compatible REST routes."""
