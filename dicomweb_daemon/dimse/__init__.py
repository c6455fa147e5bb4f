"""DICOM networking (DIMSE, with pynetdicom): the SCP, SCU operations and the modalities."""
