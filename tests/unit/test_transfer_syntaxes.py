"""The transfer syntax of a dataset read without file meta information, from its encoding."""
from __future__ import annotations

import pytest

from dicomweb_daemon.dicom.transfer_syntaxes import syntax_of_encoding


@pytest.mark.parametrize(("implicit_vr", "little_endian", "syntax"), [
    (True, True, "1.2.840.10008.1.2"),
    (False, True, "1.2.840.10008.1.2.1"),
    (False, False, "1.2.840.10008.1.2.2"),
])
def test_syntax_of_encoding(implicit_vr, little_endian, syntax):
    """Implicit VR is Implicit VR Little Endian; explicit VR is little or big endian (PS3.5 §A.1-A.3)."""
    assert syntax_of_encoding(implicit_vr, little_endian) == syntax
