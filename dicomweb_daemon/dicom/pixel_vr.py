"""The VR of the pixel data, and Orthanc's ``PixelDataVR`` instance metadata (Orthanc 1.12.1).

PS3.5 §8.2 (and Annex A.4): encapsulated pixel data, and native pixel data of at most 8 bits allocated in
explicit VR, are OB; other native pixel data are OW. Some files say OW for 8-bit pixels: Orthanc keeps
the file's VR and records it as ``PixelDataVR`` only then, when it is not the expected one.
"""
from __future__ import annotations


def expected_pixel_vr(encapsulated: bool, bits_allocated: int) -> str:
    return "OB" if encapsulated or bits_allocated <= 8 else "OW"


def file_pixel_vr(file_vr: str | None, encapsulated: bool, bits_allocated: int) -> str:
    """The VR to describe the pixel data with: the file's OB or OW, else the expected one."""
    if file_vr in ("OB", "OW") and not encapsulated:
        return file_vr
    return expected_pixel_vr(encapsulated, bits_allocated)


def unexpected_pixel_vr(pixels, bits_allocated: int) -> str | None:
    """``PixelDataVR``: the VR the file gives native pixel data when it is not the expected one."""
    if pixels is None or pixels.encapsulated or pixels.vr not in ("OB", "OW"):
        return None
    return pixels.vr if pixels.vr != expected_pixel_vr(False, bits_allocated) else None
