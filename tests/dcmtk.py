"""What the DICOM networking tests share: DCMTK's tools (Debian ``dcmtk``), waiting for a port or for
what a storescp received, and comparing what went over the wire with what was stored."""
from __future__ import annotations

import io
import shutil
import socket
import struct
import time
from pathlib import Path

import pydicom


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} (Debian package dcmtk) is needed: .ci/run installs it"
    return path


def dataset_bytes(data: bytes) -> bytes:
    """A Part 10 file's data set, after its meta information (its group length says where it ends)."""
    assert data[128:132] == b"DICM"
    (group_length,) = struct.unpack("<I", data[140:144])
    return data[144 + group_length:]


def same_content(a: bytes, b: bytes) -> bool:
    """The same attributes and values (a DCMTK sender re-encodes: group lengths and trailing padding go)."""
    def read(data: bytes) -> pydicom.Dataset:
        ds = pydicom.dcmread(io.BytesIO(data))
        for element in list(ds):
            if element.tag.element == 0 or element.tag == 0xFFFCFFFC:
                del ds[element.tag]
        return ds

    return read(a) == read(b)


def wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def received(folder: Path, expected: int, timeout: float = 10) -> list[bytes]:
    """The files a storescp wrote into ``folder``, once there are ``expected`` of them."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        files = sorted(p for p in folder.iterdir() if p.is_file())
        if len(files) >= expected:
            time.sleep(0.2)  # storescp writes each file before it answers; be safe with the last
            return [p.read_bytes() for p in files]
        time.sleep(0.05)
    raise AssertionError(f"storescp received {len(list(folder.iterdir()))} of {expected} files")
