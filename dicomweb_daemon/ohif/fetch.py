"""Fetch the OHIF viewer into the daemon's OHIF folder (``OhifFolder``, by default the ``ohif``
folder of ``StorageDirectory``):

    python -m dicomweb_daemon.ohif.fetch [--config etc/dicomweb.json] [--into FOLDER] [--version 3.13.2]

``npm pack`` downloads the pinned release of ``@ohif/app`` from the npm registry (npm checks its
integrity); its built ``dist/`` is unpacked beside the folder, moved under ``/ohif/`` (OHIF is built
to be served at ``/``: its absolute links and webpack's public path are rewritten) and renamed into
place, so that a running daemon never serves half a viewer. Needs Node.js' ``npm`` (Debian:
``apt-get install npm``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from . import PINNED, PREFIX


def relocate(dist: Path, prefix: str) -> None:
    """A viewer built for ``/`` made to work under ``prefix``: index.html's links and PUBLIC_URL,
    webpack's public path in each bundle (where lazily loaded chunks are fetched from), the
    stylesheets' ``url(/...)``, and the absolute paths of the manifest and the service worker's list."""
    index = dist / "index.html"
    text = re.sub(r'(src|href)="/(?!/)', rf'\1="{prefix}', index.read_text("utf-8"))
    index.write_text(text.replace('window.PUBLIC_URL="/"', f"window.PUBLIC_URL={json.dumps(prefix)}"), "utf-8")
    for bundle in dist.glob("*.js"):
        data = bundle.read_bytes()
        moved = data.replace(b'__webpack_require__.p = "/"', b'__webpack_require__.p = ' + json.dumps(prefix).encode())
        if bundle.name in ("sw.js", "manifest.json"):
            moved = moved.replace(b'"/assets/', f'"{prefix}assets/'.encode())
        if moved != data:
            bundle.write_bytes(moved)
    for sheet in dist.glob("*.css"):  # fonts and images: url(/a34f....woff2)
        text = sheet.read_text("utf-8")
        moved = re.sub(r"url\(/(?!/)", f"url({prefix}", text)
        if moved != text:
            sheet.write_text(moved, "utf-8")
    manifest = dist / "manifest.json"
    if manifest.is_file():
        manifest.write_text(manifest.read_text("utf-8").replace('"/assets/', f'"{prefix}assets/'), "utf-8")


def fetch(into: Path, version: str = PINNED) -> Path:
    """The viewer's files of ``@ohif/app@version`` in ``into`` (replaced whole); returns it."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not installed (Debian: apt-get install npm); it fetches @ohif/app")
    into = into.resolve()
    into.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=into.parent, prefix=".ohif-") as work:
        done = subprocess.run([npm, "pack", f"@ohif/app@{version}", "--pack-destination", work, "--silent"],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"npm pack @ohif/app@{version} failed: {done.stderr.strip() or done.stdout.strip()}")
        archive = Path(work) / done.stdout.strip().splitlines()[-1]
        unpacked = Path(work) / "unpacked"
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith("package/dist/") and (m.isfile() or m.isdir())]
            tar.extractall(unpacked, members=members, filter="data")
        dist = unpacked / "package" / "dist"
        if not (dist / "index.html").is_file():
            raise SystemExit(f"@ohif/app@{version} has no dist/index.html: not a built viewer")
        relocate(dist, PREFIX)
        (dist / ".version").write_text(version)
        old = Path(work) / "old"
        if into.exists():
            os.rename(into, old)
        os.rename(dist, into)
    return into


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="the daemon's configuration (file or folder): its OhifFolder")
    parser.add_argument("--into", help="the folder to fill (instead of the configuration's)")
    parser.add_argument("--version", default=PINNED, help=f"the @ohif/app release (default {PINNED})")
    args = parser.parse_args(argv)
    if args.into:
        folder = Path(args.into)
    else:
        from ..config.load import load_config

        settings = load_config(args.config)
        folder = Path(settings.ohif_directory)
    print(f"OHIF viewer {args.version} in {fetch(folder, args.version)}")  # noqa: T201 - a command's answer


if __name__ == "__main__":
    main(sys.argv[1:])
