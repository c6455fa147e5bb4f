"""Client-side encryption of stored files: sealed in chunks, each authenticated, keys rotated by id."""
from __future__ import annotations

import base64
import os

import pytest

from dicomweb_daemon.storage.encryption import CHUNK, HEADER, TAG, Cipher, EncryptionError, cipher_from


def key() -> bytes:
    return os.urandom(32)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_sealed_content_opens_whole_and_by_ranges(size):
    content = os.urandom(size)
    cipher = Cipher((7, key()))
    sealed = cipher.seal(memoryview(content))
    chunks = -(-size // CHUNK)
    assert len(sealed) == HEADER + size + chunks * TAG
    assert Cipher.content_size(len(sealed)) == size
    assert cipher.open(sealed) == content
    header = cipher.header(sealed[:HEADER])
    for start, end in [(0, size), (size // 2, size), (CHUNK - 3, CHUNK + 5), (1, 2)]:
        start, end = min(start, size), min(end, size)
        if end <= start:
            continue
        first, last = start // CHUNK, (end - 1) // CHUNK
        span = header.stored_span(first, last)
        opened = header.open_chunks(sealed[span[0]:span[1]], first)
        skip = start - first * CHUNK
        assert opened[skip:skip + end - start] == content[start:end]


def test_same_content_seals_differently_and_hides_it():
    cipher = Cipher((1, key()))
    content = b"DICM" + b"PatientName^Secret" * 1000
    a, b = cipher.seal(content), cipher.seal(content)
    assert a != b
    assert b"PatientName" not in a and b"DICM" not in a


def test_tampering_is_detected():
    cipher = Cipher((1, key()))
    content = os.urandom(2 * CHUNK + 10)
    sealed = bytearray(cipher.seal(content))
    sealed[HEADER + CHUNK + 100] ^= 1  # one bit of the second chunk
    with pytest.raises(EncryptionError, match="chunk 1"):
        cipher.open(bytes(sealed))
    with pytest.raises(EncryptionError, match="cut short"):
        cipher.open(cipher.seal(content)[:-5])
    header = bytearray(cipher.seal(content))
    header[12] ^= 1  # the content size, authenticated by the data key's wrapping
    with pytest.raises(EncryptionError, match="does not open"):
        cipher.open(bytes(header))
    with pytest.raises(EncryptionError, match="not sealed"):
        cipher.open(b"DICM" + content)


def test_chunks_of_another_file_do_not_open():
    cipher = Cipher((1, key()))
    a, b = cipher.seal(os.urandom(CHUNK * 2)), cipher.seal(os.urandom(CHUNK * 2))
    swapped = a[:HEADER] + b[HEADER:]
    with pytest.raises(EncryptionError):
        cipher.open(swapped)


def test_rotation_opens_old_files_with_previous_keys():
    old, new = key(), key()
    sealed_old = Cipher((1, old)).seal(b"old file")
    rotated = Cipher((2, new), {1: old})
    assert rotated.open(sealed_old) == b"old file"
    sealed_new = rotated.seal(b"new file")
    assert int.from_bytes(sealed_new[4:8], "big") == 2
    with pytest.raises(EncryptionError, match="master key 2"):
        Cipher((1, old)).open(sealed_new)
    with pytest.raises(EncryptionError, match="does not open with master key 1"):
        Cipher((1, key())).open(sealed_old)  # another key under the same id


def test_configuration_as_orthanc_writes_it(tmp_path):
    master, previous = tmp_path / "master.key", tmp_path / "old.key"
    master.write_bytes(base64.b64encode(key()) + b"\n")
    previous.write_bytes(base64.b64encode(key()))
    assert cipher_from({}, "S") is None
    assert cipher_from({"Enable": False, "MasterKey": [1, "/nowhere"]}, "S") is None
    cipher = cipher_from({"Enable": True, "MasterKey": [3, str(master)], "PreviousMasterKeys": [[1, str(previous)]],
                          "MaxConcurrentInputSize": 1024}, "S")
    assert cipher.key_id == 3 and set(cipher.keys) == {1, 3}
    short = tmp_path / "short.key"
    short.write_bytes(base64.b64encode(b"x" * 16))
    for section, message in [
        ({"Enable": True}, "S.MasterKey is required"),
        ({"Enable": True, "MasterKey": [3, str(tmp_path / "missing")]}, "cannot read the key file"),
        ({"Enable": True, "MasterKey": [3, str(short)]}, "has 16 bytes"),
        ({"Enable": True, "MasterKey": ["3", str(master)]}, r"S.MasterKey must be \[key id"),
        ({"Enable": True, "MasterKey": [3, str(master)], "PreviousMasterKeys": [[-1, str(master)]]},
         r"PreviousMasterKeys\[0\]"),
    ]:
        with pytest.raises(ValueError, match=message):
            cipher_from(section, "S")
    not_base64 = tmp_path / "text.key"
    not_base64.write_text("not a key!")
    with pytest.raises(ValueError, match="does not hold base64"):
        cipher_from({"Enable": True, "MasterKey": [1, str(not_base64)]}, "S")
