"""The uncompressed transfer syntaxes (PS3.5 §10 and Annex A) and how their pixel data relate, in one
place: the web layer negotiates with them, the codecs convert between them, the DICOM model re-encodes."""
from __future__ import annotations

from pydicom import uid

IMPLICIT_LE = str(uid.ImplicitVRLittleEndian)  # PS3.5 §A.1, the DICOM default
EXPLICIT_LE = str(uid.ExplicitVRLittleEndian)  # PS3.5 §A.2, the DICOMweb default (PS3.18 §8.7.3.5.2)
DEFLATED = str(uid.DeflatedExplicitVRLittleEndian)  # PS3.5 §A.5: the whole dataset is deflated
BIG_ENDIAN = str(uid.ExplicitVRBigEndian)  # PS3.5 §A.3 (retired, still stored)

#: Native syntaxes whose frames are byte ranges of the stored file (the frame table lists them);
#: deflated files are not among them: their pixels lie inside the deflated stream.
NATIVE = (EXPLICIT_LE, IMPLICIT_LE, BIG_ENDIAN)
#: Little-endian native syntaxes whose frames are what the decoders take as they are stored.
NATIVE_LE = (IMPLICIT_LE, EXPLICIT_LE)
#: Syntaxes whose frames are byte-identical: the VR and the deflation apply to the dataset only.
SAME_FRAMES = (IMPLICIT_LE, EXPLICIT_LE, DEFLATED)
#: Every uncompressed syntax (what the native codec reads and writes).
UNCOMPRESSED = (IMPLICIT_LE, EXPLICIT_LE, DEFLATED, BIG_ENDIAN)


def syntax_of_encoding(implicit_vr: bool, little_endian: bool) -> str:
    """The transfer syntax of a dataset read without file meta information (PS3.10 §7.1), from the
    encoding it was read in (pydicom's ``original_encoding``): implicit VR is little endian only
    (PS3.5 §A.1)."""
    if implicit_vr:
        return IMPLICIT_LE
    return EXPLICIT_LE if little_endian else BIG_ENDIAN
