"""The daemon under systemd: ``READY=1`` on ``$NOTIFY_SOCKET`` once its ports listen (``Type=notify``),
``STOPPING=1`` when it is asked to stop; and the unit file passes ``systemd-analyze verify`` once
installed as the README says (here: the paths pointed at this checkout's venv)."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import requests

UNIT = Path(__file__).parents[2] / "etc" / "dicomweb.service"


def _receive(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_ready_and_stopping_are_notified(make_daemon, tmp_path):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(30)
        d = make_daemon(env={"NOTIFY_SOCKET": path}, start=False).start(wait=False)
        message = _receive(sock)
        assert "READY=1" in message.splitlines() and f"MAINPID={d.proc.pid}" in message
        assert requests.get(d.url + "/system", timeout=5).status_code == 200  # listening when ready
        d.stop()
        assert "STOPPING=1" in _receive(sock).splitlines()


def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    venv = Path(sys.executable).parent.parent
    unit = tmp_path / "dicomweb.service"
    unit.write_text(UNIT.read_text().replace("/opt/dicomweb/.venv", str(venv)))
    assert "Type=notify" in unit.read_text()
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is not installed (Debian: systemd)"
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0 and "error" not in result.stderr.lower(), result.stderr
