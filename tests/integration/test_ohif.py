"""The OHIF viewer served by the daemon, in a real headless browser: the pinned ``@ohif/app`` is
fetched with the daemon's own command (``python -m dicomweb_daemon.ohif.fetch``, once, into the
tests' cache folder), and its study list, a CT series and a multi-frame instance open and render
against the daemon (the viewport's canvas is not blank) with no failed request and no console error.
Without the viewer, /ohif/ says how to get it and the pages work.

Set DICOMWEB_SCREENSHOTS to a folder to keep screenshots."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from dicomweb_daemon.ohif import PINNED
from tests.conftest import ROOT, Daemon
from tests.dicom_files import make_ct
from tests.integration.test_pages import CHROMEDRIVER, CHROMIUM, console_errors

CACHE = Path.home() / ".cache" / "dicomweb-daemon-tests" / f"ohif-{PINNED}"


@pytest.fixture(scope="module")
def viewer_folder() -> Path:
    """The pinned viewer, fetched by the daemon's command the first time."""
    if not (CACHE / "index.html").is_file():
        subprocess.run([sys.executable, "-m", "dicomweb_daemon.ohif.fetch", "--into", str(CACHE)], cwd=ROOT,
                       check=True, timeout=600)
    return CACHE


def ct_series(count: int = 12) -> list[bytes]:
    """A CT series with the geometry a viewer stacks slices by."""
    study, series = generate_uid(), generate_uid()
    return [make_ct("OHIF-CT", "VIEWER^CT", study_uid=study, series_uid=series, instance_number=n + 1, size=128,
                    extra={"ImagePositionPatient": [0, 0, 2.5 * n], "ImageOrientationPatient": [1, 0, 0, 0, 1, 0],
                           "PixelSpacing": [0.7, 0.7], "SliceThickness": 2.5, "StudyDescription": "Viewer CT"})
            for n in range(count)]


@pytest.fixture(scope="module")
def served(tmp_path_factory, viewer_folder):
    d = Daemon(tmp_path_factory.mktemp("ohif"), {"OhifFolder": str(viewer_folder)}).start()
    ct = [d.store(data) for data in ct_series()][0]
    multi = d.store(Path(get_testdata_file("emri_small.dcm")).read_bytes())
    uids = {name: d.get(f"/studies/{ids['ParentStudy']}").json()["MainDicomTags"]["StudyInstanceUID"]
            for name, ids in (("ct", ct), ("multiframe", multi))}
    yield d, uids, ct
    d.stop()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                     "--enable-unsafe-swiftshader", "--use-angle=swiftshader"):  # WebGL without a GPU
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def failed_requests(driver) -> list:
    """Requests of the page answered with an error status, or that failed, since the last call."""
    failed = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.responseReceived" and message["params"]["response"]["status"] >= 400:
            failed.append((message["params"]["response"]["status"], message["params"]["response"]["url"]))
        elif message["method"] == "Network.loadingFailed":
            failed.append((message["params"].get("errorText"), message["params"].get("type")))
    return failed


PAINTED = """
const canvas = document.querySelector('canvas.cornerstone-canvas');
if (!canvas || !canvas.width) return 0;
const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let painted = 0;
for (let i = 0; i < pixels.length; i += 4) if (pixels[i] || pixels[i + 1] || pixels[i + 2]) painted++;
return painted;
"""


def wait_painted(driver, timeout: float = 60) -> int:
    """Pixels painted in the viewport once the image shows (0 means a blank canvas): the count seen
    when the wait ended (read again, the viewer may be drawing the canvas anew)."""
    return WebDriverWait(driver, timeout).until(lambda d: (painted := d.execute_script(PAINTED)) > 1000 and painted)


def shot(driver, name: str) -> None:
    if os.environ.get("DICOMWEB_SCREENSHOTS"):
        driver.save_screenshot(str(Path(os.environ["DICOMWEB_SCREENSHOTS"]) / f"{name}.png"))


def test_the_study_list_shows_the_stored_studies(served, browser):
    d, _uids, _ct = served
    browser.get(d.url + "/ohif/")
    WebDriverWait(browser, 60).until(lambda b: "VIEWER, CT" in b.find_element(By.TAG_NAME, "body").text)
    assert "Viewer CT" in browser.find_element(By.TAG_NAME, "body").text
    shot(browser, "ohif-study-list")
    assert failed_requests(browser) == []
    assert console_errors(browser) == []


@pytest.mark.parametrize("study", ["ct", "multiframe"])
def test_a_study_renders_in_the_viewer(served, browser, study):
    d, uids, _ct = served
    browser.get(f"{d.url}/ohif/viewer?StudyInstanceUIDs={uids[study]}")
    assert wait_painted(browser) > 1000
    time.sleep(1)  # the rest of the series' requests (prefetch) answered too
    shot(browser, f"ohif-{study}")
    assert failed_requests(browser) == []
    assert console_errors(browser) == []


def test_the_study_page_opens_the_viewer(served, browser):
    d, uids, ct = served
    browser.get(f"{d.url}/ui/#/studies/{ct['ParentStudy']}")
    link = WebDriverWait(browser, 15).until(lambda b: b.find_element(By.CSS_SELECTOR, "a[data-action=viewer]"))
    assert link.get_attribute("href") == f"{d.url}/ohif/viewer?StudyInstanceUIDs={uids['ct']}"
    link.click()
    WebDriverWait(browser, 15).until(lambda b: len(b.window_handles) == 2)
    browser.switch_to.window(browser.window_handles[1])
    try:
        assert wait_painted(browser) > 1000
    finally:
        browser.close()
        browser.switch_to.window(browser.window_handles[0])


def test_the_generated_configuration_points_at_the_daemon(served):
    d, _uids, _ct = served
    config = requests.get(d.url + "/ohif/app-config.js")
    assert config.headers["Content-Type"].startswith("text/javascript")
    assert f'"qidoRoot": "{d.url}/dicom-web"' in config.text
    assert f'"wadoUriRoot": "{d.url}/wado"' in config.text
    assert '"routerBasename": "/ohif"' in config.text
    assert requests.get(d.url + "/ui/viewer.json").json()["Version"] == PINNED
    index = requests.get(d.url + "/ohif/viewer?StudyInstanceUIDs=1.2.3").text  # a route of the application
    assert 'window.PUBLIC_URL="/ohif/"' in index and 'src="/ohif/app-config.js"' in index
    assert requests.get(d.url + "/ohif/nothing-here.js").status_code == 404
    wasm = next(p.name for p in Path(d.config["OhifFolder"]).glob("*.wasm"))
    answer = requests.get(f"{d.url}/ohif/{wasm}")
    assert answer.headers["Content-Type"] == "application/wasm" and "immutable" in answer.headers["Cache-Control"]


def test_without_the_viewer_the_pages_say_how_to_get_it(make_daemon, browser, tmp_path):
    d = make_daemon({"OhifFolder": str(tmp_path / "no-viewer")})  # never created
    answer = requests.get(d.url + "/ohif/")
    assert answer.status_code == 404
    assert "python -m dicomweb_daemon.ohif.fetch" in answer.json()["Details"]
    assert requests.get(d.url + "/ui/viewer.json").json()["Installed"] is False
    stored = d.store(make_ct("NO-VIEWER"))
    browser.get(f"{d.url}/ui/#/studies/{stored['ParentStudy']}")
    note = WebDriverWait(browser, 15).until(lambda b: b.find_element(By.CSS_SELECTOR, "[data-role=no-viewer]"))
    assert "python -m dicomweb_daemon.ohif.fetch" in note.text
    assert console_errors(browser) == []
