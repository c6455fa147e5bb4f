"""The OHIF viewer opening a study: time to its first image and to all frames of a --instances CT
series, against this daemon and against Orthanc 1.10.1 (its DICOMweb plugin) serving the same
study, in headless Chromium (Debian's), each setup in turn, --rounds times, a fresh browser
profile each time (OHIF's own files are fetched too, as a first visit does).

Setups: ``ours`` (the daemon serves OHIF under /ohif/ and its DICOMweb), ``ours+nginx`` and
``orthanc+nginx``: one nginx serves the same OHIF files and proxies /dicom-web/ to the server, so
that the two servers differ only in their DICOMweb answers (Orthanc has no CORS, so OHIF must come
from its origin).

What the page measures (Resource Timing, and the viewport's canvas watched at every animation
frame): ``first image`` from navigation start to the first painted pixel; ``all frames`` to the end
of the last of the series' frame requests; ``DICOMweb busy``: the time during which at least one
DICOMweb request was in flight (the server's share, with the network), and ``waiting``: the sum of
the requests' times to first byte.

    python bench/ohif.py [--instances 250] [--size 512] [--rounds 3]

The viewer is fetched with the daemon's command into ~/.cache/dicomweb-daemon-tests when absent.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import pydicom

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from transfers import call, free_port, series, start_orthanc, start_ours, wait_for  # noqa: E402

from dicomweb_daemon.ohif import PINNED  # noqa: E402
from dicomweb_daemon.ohif.fetch import fetch  # noqa: E402
from dicomweb_daemon.web.ohif import app_config  # noqa: E402

CACHE = pathlib.Path.home() / ".cache" / "dicomweb-daemon-tests" / f"ohif-{PINNED}"

# Injected before OHIF's own scripts: room for every resource timing, and the first painted pixel
# of the viewport (its middle row, read at each animation frame).
WATCH = """
performance.setResourceTimingBufferSize(100000);
window.__firstImage = null;
(function watch() {
  const canvas = document.querySelector('canvas.cornerstone-canvas');
  if (canvas && canvas.width && canvas.height) {
    const row = canvas.getContext('2d', {willReadFrequently: true})
      .getImageData(0, canvas.height >> 1, canvas.width, 1).data;
    for (let i = 0; i < row.length; i += 4) {
      if (row[i] || row[i + 1] || row[i + 2]) { window.__firstImage = performance.now(); return; }
    }
  }
  requestAnimationFrame(watch);
})();
"""

TIMINGS = """
const frames = performance.getEntriesByType('resource').filter(e => e.name.includes('/frames/'));
const dicomweb = performance.getEntriesByType('resource').filter(e => e.name.includes('/dicom-web/'));
return {first: window.__firstImage, frames: frames.length,
        framesEnd: Math.max(0, ...frames.map(e => e.responseEnd)),
        dicomweb: dicomweb.map(e => [e.startTime, e.responseEnd, e.responseStart - e.requestStart])};
"""


class Nginx:
    """One nginx serving the viewer's files under /ohif/ (with a configuration for ``upstream``)
    and proxying DICOMweb to ``upstream``."""

    def __init__(self, viewer: pathlib.Path, upstream: str, name: str):
        self.work = pathlib.Path(tempfile.mkdtemp(prefix="ohif-nginx-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (self.work / "app-config.js").write_text(app_config(self.url, "/dicom-web", "/wado", name))
        (self.work / "nginx.conf").write_text(f"""
{"user root;" if os.geteuid() == 0 else ""} daemon off; worker_processes 1;
pid {self.work}/nginx.pid; error_log {self.work}/error.log;
events {{ worker_connections 1024; }}
http {{
  include /etc/nginx/mime.types; access_log off; sendfile on;
  client_body_temp_path {self.work}/body; proxy_temp_path {self.work}/proxy;
  fastcgi_temp_path {self.work}/fcgi; uwsgi_temp_path {self.work}/uwsgi; scgi_temp_path {self.work}/scgi;
  upstream backend {{ server {upstream}; keepalive 32; }}
  server {{
    listen 127.0.0.1:{self.port};
    location = /ohif/app-config.js {{ alias {self.work}/app-config.js; }}
    location /ohif/ {{ alias {viewer}/; try_files $uri /ohif/index.html; }}
    location / {{ proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
                 proxy_buffering off; proxy_read_timeout 300; }}
  }}
}}""")
        self.proc = subprocess.Popen(["nginx", "-c", str(self.work / "nginx.conf"), "-p", str(self.work)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(self.url + "/ohif/app-config.js")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.work, ignore_errors=True)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                     "--enable-unsafe-swiftshader", "--use-angle=swiftshader"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                              options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})
    return driver


def busy(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of intervals."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def open_study(base: str, study_uid: str, frames: int) -> dict:
    driver = browser()
    try:
        driver.get(f"{base}/ohif/viewer?StudyInstanceUIDs={study_uid}")
        deadline = time.time() + 300
        while True:
            timings = driver.execute_script(TIMINGS)
            if timings["first"] is not None and timings["frames"] >= frames:
                break
            if time.time() > deadline:
                raise SystemExit(f"{base}: {timings['frames']} of {frames} frames after 300 s")
            time.sleep(0.05)
        requests = timings["dicomweb"]
        return {"first": timings["first"], "all": timings["framesEnd"], "requests": len(requests),
                "busy": busy([(s, e) for s, e, _ in requests]), "waiting": sum(w for _, _, w in requests)}
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=250)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not (CACHE / "index.html").is_file():
        fetch(CACHE)
    files = series(args.instances, args.size, geometry=True)
    ours = start_ours("ours", {"OhifFolder": str(CACHE)})
    orthanc = start_orthanc("orthanc", {})
    proxies: list[Nginx] = []
    try:
        for server in (ours, orthanc):
            for data in files:
                call("POST", server.url + "/instances", data)
        study_uid = pydicom.dcmread(pydicom.filebase.DicomBytesIO(files[0])).StudyInstanceUID
        proxies = [Nginx(CACHE, f"127.0.0.1:{ours.port}", "ours"), Nginx(CACHE, f"127.0.0.1:{orthanc.port}", "orthanc")]
        setups = {"ours": ours.url, "ours+nginx": proxies[0].url, "orthanc+nginx": proxies[1].url}
        results: dict[str, list[dict]] = {name: [] for name in setups}
        for round_ in range(args.rounds):
            for name, base in setups.items():
                figures = open_study(base, study_uid, args.instances)
                results[name].append(figures)
                print(f"round {round_ + 1} {name}: first image {figures['first']:.0f} ms, all frames "
                      f"{figures['all']:.0f} ms, DICOMweb busy {figures['busy']:.0f} ms over "
                      f"{figures['requests']} requests", flush=True)
    finally:
        for proxy in proxies:
            proxy.stop()
        ours.stop()
        orthanc.stop()

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    print(f"\nOHIF {PINNED} opening a study of {args.instances} CT images of {args.size}x{args.size} (16-bit), "
          f"fresh browser profile each time, headless Chromium; median of {args.rounds} rounds\n")
    print("| setup | first image (ms) | all frames (ms) | DICOMweb requests | DICOMweb busy (ms) | "
          "busy / all frames | time to first byte, summed (ms) |")
    print("|---|---|---|---|---|---|---|")
    for name in results:
        print(f"| {name} | {median(name, 'first'):.0f} | {median(name, 'all'):.0f} | {median(name, 'requests'):.0f} "
              f"| {median(name, 'busy'):.0f} | {median(name, 'busy') / median(name, 'all'):.0%} "
              f"| {median(name, 'waiting'):.0f} |")
    print("\n" + json.dumps(results))


if __name__ == "__main__":
    main()
