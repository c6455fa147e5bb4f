"""De-identification: the rules of DICOM PS3.15 Annex E per edition (``profiles``)."""
