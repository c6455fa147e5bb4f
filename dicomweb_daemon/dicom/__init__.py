"""The DICOM model: identifiers, tags per level, parsing. Pure: no database, files or HTTP."""
