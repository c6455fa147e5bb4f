"""The pages for people (``/ui/``) in a real headless browser (Debian's chromium and chromedriver,
driven by Selenium): every page loads without console errors; upload, browse, preview, download,
protect and delete work by clicks; DICOM strings show as text; another site cannot make the
browser change anything here (CSRF), which is also checked over plain HTTP.

Set DICOMWEB_SCREENSHOTS to a folder to keep a screenshot of each page."""
from __future__ import annotations

import http.server
import io
import os
import shutil
import threading
import time
import zipfile
from pathlib import Path

import pytest
import requests
from pydicom.data import get_testdata_file
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import free_port
from tests.dicom_files import make_ct

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
XSS = "<img src=x onerror=alert(1)>^<b>bold</b>"


def waiting(driver, seconds: float) -> WebDriverWait:
    """A wait that looks again when the page redrew an element between finding it and reading it (a
    toast gone, a list redrawn): what it waits for is read again, not failed on."""
    return WebDriverWait(driver, seconds, ignored_exceptions=(StaleElementReferenceException,))


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                     "--disable-gpu"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    yield driver
    driver.quit()


@pytest.fixture(autouse=True)
def _fresh_console(request):
    """Each test sees the console errors of its own pages only (the browser is the module's): the
    last test's page is left (a jobs page polls its daemon, which that test stopped)."""
    if "browser" in request.fixturenames:
        driver = request.getfixturevalue("browser")
        driver.get("about:blank")
        driver.get_log("browser")


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def open_page(driver, base: str, hash_: str, shot: str | None = None):
    """Open a page and wait until it has rendered (app.js marks it)."""
    driver.get(f"{base}/ui/{hash_}")
    wait_rendered(driver, hash_)
    if shot and os.environ.get("DICOMWEB_SCREENSHOTS"):
        driver.save_screenshot(str(Path(os.environ["DICOMWEB_SCREENSHOTS"]) / f"{shot}.png"))


def wait_rendered(driver, hash_: str) -> None:
    waiting(driver, 15).until(
        lambda d: d.find_element(By.ID, "main").get_attribute("data-ready") == hash_)


def click_row(driver, text: str) -> None:
    """Click the table row that shows ``text``, and wait for the page it opens."""
    before = driver.current_url
    row = next(r for r in driver.find_elements(By.CSS_SELECTOR, "tr.link") if text in r.text)
    row.click()
    waiting(driver, 15).until(lambda d: d.current_url != before)
    wait_rendered(driver, "#" + driver.current_url.split("#", 1)[1])


def preview_shown(driver) -> bool:
    image = driver.find_element(By.CSS_SELECTOR, "img[data-role=preview]")
    waiting(driver, 15).until(lambda d: d.execute_script("return arguments[0].complete", image))
    return driver.execute_script("return arguments[0].naturalWidth", image) > 0


def test_root_leads_to_the_pages_and_every_page_loads_without_console_errors(daemon, browser):
    ids = daemon.store(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    multi = daemon.store(Path(get_testdata_file("emri_small.dcm")).read_bytes())
    browser.get(daemon.url + "/")
    waiting(browser, 15).until(lambda d: d.current_url.startswith(daemon.url + "/ui/"))
    pages = {"patients": "#/", "search": "#/search?PatientName=*", "upload": "#/upload",
             "patient": f"#/patients/{ids['ParentPatient']}", "study": f"#/studies/{ids['ParentStudy']}",
             "series": f"#/series/{ids['ParentSeries']}", "instance": f"#/instances/{ids['ID']}",
             "multiframe": f"#/instances/{multi['ID']}"}
    for name, hash_ in pages.items():
        open_page(browser, daemon.url, hash_, shot=name)
        main = browser.find_element(By.ID, "main").text
        assert "Error" not in browser.find_element(By.TAG_NAME, "h1").text, (name, main)
        if name == "search":
            waiting(browser, 15).until(lambda d: "studies (wildcards" in d.find_element(By.ID, "main").text)
        assert console_errors(browser) == [], name
    open_page(browser, daemon.url, f"#/instances/{multi['ID']}")
    assert preview_shown(browser)
    slider = browser.find_element(By.CSS_SELECTOR, "input[type=range]")
    assert slider.get_attribute("max") == "9"  # ten frames to scroll through
    browser.execute_script("arguments[0].value = 4; arguments[0].dispatchEvent(new Event('input'))", slider)
    assert "Frame 5 / 10" in browser.find_element(By.ID, "main").text
    image = browser.find_element(By.CSS_SELECTOR, "img[data-role=preview]")
    assert image.get_attribute("src").endswith("/frames/4/preview")
    assert preview_shown(browser)
    assert console_errors(browser) == []


def test_upload_browse_preview_download_protect_delete_by_clicks(make_daemon, browser, downloads, tmp_path):
    d = make_daemon()
    single = make_ct("CLICKS", "CLICK^ME", study_date="20240131")
    (tmp_path / "one.dcm").write_bytes(single)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a/two.dcm", make_ct("ZIPPED", "FROM^ZIP"))
        z.writestr("a/three.dcm", make_ct("ZIPPED", "FROM^ZIP"))
    (tmp_path / "two.zip").write_bytes(archive.getvalue())
    (tmp_path / "broken.dcm").write_bytes(b"DICM, or not")

    open_page(browser, d.url, "#/upload")
    chooser = browser.find_element(By.CSS_SELECTOR, "input[data-role=files]")
    chooser.send_keys("\n".join(str(tmp_path / n) for n in ("one.dcm", "two.zip", "broken.dcm")))
    waiting(browser, 30).until(
        lambda b: "2 stored, 1 failed, 0 to go" in b.find_element(By.ID, "main").text)
    results = {r.get_attribute("data-file"): r.find_element(By.CSS_SELECTOR, "td.status")
               for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-file]")}
    assert results["one.dcm"].text == "Success"
    assert results["two.zip"].text == "2 of 2 stored"
    assert "failed" in results["broken.dcm"].get_attribute("class") and results["broken.dcm"].text
    assert len(d.get("/instances").json()) == 3
    # The browser logs the refused file's answer (400): that one, and nothing else.
    assert [e for e in console_errors(browser) if "/instances - " not in e or "(Bad Request)" not in e] == []

    browser.find_element(By.LINK_TEXT, "Patients").click()
    wait_rendered(browser, "#/")
    click_row(browser, "CLICK^ME")
    protect = browser.find_element(By.CSS_SELECTOR, "button[data-action=protect]")
    patient = browser.current_url.rsplit("/", 1)[1]
    protect.click()
    waiting(browser, 10).until(lambda b: protect.text == "Unprotect")
    assert d.get(f"/patients/{patient}/protected").text.strip() == "1"
    click_row(browser, "2024-01-31")  # the study
    click_row(browser, "CT")  # the series
    assert preview_shown(browser)
    click_row(browser, "1.")  # the instance, by its SOP Instance UID
    assert preview_shown(browser)
    instance = browser.current_url.rsplit("/", 1)[1]

    browser.find_element(By.CSS_SELECTOR, "a[data-action=download]").click()
    deadline = time.time() + 15
    while not [p for p in downloads.iterdir() if not p.name.endswith(".crdownload")] and time.time() < deadline:
        time.sleep(0.1)
    files = [p for p in downloads.iterdir() if not p.name.endswith(".crdownload")]
    assert [p.read_bytes() for p in files] == [d.get(f"/instances/{instance}/file").content]

    browser.find_element(By.CSS_SELECTOR, "button[data-action=delete]").click()
    browser.find_element(By.ID, "confirm-ok").click()
    waiting(browser, 15).until(lambda b: "/instances/" not in b.current_url)
    assert d.get(f"/instances/{instance}").status_code == 404
    assert d.get(f"/patients/{patient}").status_code == 404  # it was its patient's only instance
    assert len(d.get("/instances").json()) == 2
    assert console_errors(browser) == []


def test_dicom_strings_show_as_text(make_daemon, browser):
    d = make_daemon()
    stored = d.store(make_ct("XSS-1", XSS, extra={"StudyDescription": "<script>alert(2)</script>"}))
    for hash_ in ("#/", f"#/patients/{stored['ParentPatient']}", f"#/studies/{stored['ParentStudy']}",
                  "#/search?PatientID=XSS*"):
        open_page(browser, d.url, hash_)
        if "search" in hash_:
            waiting(browser, 15).until(lambda b: "1 studies" in b.find_element(By.ID, "main").text)
        main = browser.find_element(By.ID, "main")
        assert XSS in main.text
        assert main.find_elements(By.CSS_SELECTOR, "img[src='x'], b, script") == []
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text  # noqa: B018 - raises when no alert is open
    assert "<script>alert(2)</script>" in browser.find_element(By.ID, "main").text


class _EvilSite(http.server.BaseHTTPRequestHandler):
    """Another site whose page makes the visitor's browser post to the daemon."""

    target = ""

    def do_GET(self):  # noqa: N802 - http.server API
        body = (f"<html><body><form id=f method=POST action='{self.target}' enctype='text/plain'>"
                "<input name=x value=y></form><script>document.getElementById('f').submit()</script>"
                "</body></html>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_another_site_cannot_make_the_browser_delete(make_daemon, browser):
    d = make_daemon()
    stored = d.store(make_ct("CSRF-1"))
    _EvilSite.target = f"{d.url}/patients/{stored['ParentPatient']}?_method=DELETE"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _EvilSite)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://localhost:{server.server_address[1]}/")  # another origin than 127.0.0.1:port
        waiting(browser, 15).until(lambda b: b.current_url.startswith(d.url))
        assert '"HttpStatus": 403' in browser.find_element(By.TAG_NAME, "body").text
    finally:
        server.shutdown()
    assert d.get(f"/patients/{stored['ParentPatient']}").status_code == 200


def test_forged_writes_are_refused_over_http(daemon):
    data = make_ct("CSRF-HTTP")
    evil = {"Origin": "http://evil.example"}
    refused = requests.post(daemon.url + "/instances", data=data, headers=evil)
    assert refused.status_code == 403
    assert "cross-site request forgery" in refused.json()["Details"]
    assert requests.post(daemon.url + "/instances", data=data, headers={"Sec-Fetch-Site": "cross-site"}
                         ).status_code == 403
    assert requests.post(daemon.url + "/instances", data=data, headers={"Origin": "null"}).status_code == 403
    stored = requests.post(daemon.url + "/instances", data=data, headers={**evil, "X-Requested-With": "x"})
    assert stored.status_code == 200
    assert requests.post(daemon.url + "/instances", data=data, headers={"Origin": daemon.url}).status_code == 200
    assert requests.post(daemon.url + "/instances", data=data, headers={"Sec-Fetch-Site": "same-origin"}
                         ).status_code == 200
    assert requests.post(daemon.url + "/instances", data=data).status_code == 200  # scripts send neither
    patient = stored.json()["ParentPatient"]
    # A GET overridden into a DELETE (Orthanc's _method) from an <img> of another site.
    assert requests.get(f"{daemon.url}/patients/{patient}?_method=DELETE",
                        headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert requests.get(daemon.url + "/system", headers=evil).status_code == 200  # reading is not refused here


def test_a_cors_allowed_origin_may_store(make_daemon):
    d = make_daemon({"DicomWeb": {"CorsAllowedOrigins": ["http://viewer.example"]}})
    headers = {"Origin": "http://viewer.example", "Content-Type": "application/dicom"}
    assert requests.post(d.url + "/dicom-web/studies", data=make_ct("CORS-1"), headers=headers).status_code == 200
    assert requests.post(d.url + "/instances", data=make_ct("CORS-2"), headers=headers).status_code == 403


def test_page_files(daemon):
    answer = requests.get(daemon.url + "/ui/app.js")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/javascript")
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    again = requests.get(daemon.url + "/ui/app.js", headers={"If-None-Match": answer.headers["ETag"]})
    assert again.status_code == 304
    for path in ("/ui/nothing.js", "/ui/..%2f..%2fsetup.py", "/ui/%2e%2e/%2e%2e/setup.py"):
        missing = requests.get(daemon.url + path)
        assert missing.status_code == 404 and missing.json()["Message"] == "Unknown page", path


def fill_dialog(driver, title: str, values: dict[str, str | bool]) -> None:
    """Fill the open dialog named ``title`` and press its OK button; wait for it to close."""
    dialog = waiting(driver, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, f"dialog[data-dialog='{title}']"))
    for name, value in values.items():
        control = dialog.find_element(By.NAME, name)
        if isinstance(value, bool):
            if control.is_selected() != value:
                control.click()
        elif control.tag_name == "select":
            driver.execute_script("arguments[0].value = arguments[1]", control, value)
        else:
            control.clear()
            control.send_keys(value)
    dialog.find_element(By.CSS_SELECTOR, "button[data-action=ok]").click()
    # Closed once its request succeeded; else it shows the error (read in one go: it may close meanwhile).
    state = f"""const dialog = document.querySelector("dialog[data-dialog='{title}']");
                return dialog ? dialog.querySelector("[data-role=error]").textContent : "closed";"""
    waiting(driver, 30).until(lambda d: d.execute_script(state))
    assert driver.execute_script(state) == "closed"


def button(driver, action: str, row_text: str | None = None):
    scope = driver.find_element(By.ID, "main")
    if row_text is not None:
        scope = next(r for r in scope.find_elements(By.TAG_NAME, "tr") if row_text in r.text)
    return scope.find_element(By.CSS_SELECTOR, f"[data-action={action}]")


def toast_saying(driver, text: str) -> None:
    waiting(driver, 30).until(lambda d: any(text in t.text for t in d.find_elements(By.CSS_SELECTOR, ".toast")))


def job_states(driver) -> list[str]:
    """The states the jobs page shows (read at once: the page redraws itself every second)."""
    return driver.execute_script("return [...document.querySelectorAll('[data-state]')].map(e => e.dataset.state)")


def jobs_succeeded(driver, count: int) -> None:
    """On the jobs page: ``count`` jobs, all in Success."""
    waiting(driver, 60).until(lambda d: job_states(d) == ["Success"] * count)


def test_modalities_peers_dicomweb_servers_modify_anonymize_send_and_jobs_by_clicks(make_daemon, browser):
    d = make_daemon()
    stored = d.store(make_ct("REMOTE-1", "REMOTE^ONE", extra={"StudyDescription": "Knee"}))
    aet = d.get("/system").json()["DicomAet"]

    # This daemon as its own modality, peer and DICOMweb server, added with the pages' dialogs.
    open_page(browser, d.url, "#/modalities")
    button(browser, "add…").click()
    fill_dialog(browser, "Add a modality", {"Name": "self", "AET": aet, "Host": "127.0.0.1", "Port": str(d.dicom_port)})
    wait_rendered(browser, "#/modalities")
    waiting(browser, 10).until(lambda b: "self" in b.find_element(By.ID, "main").text)
    button(browser, "echo", "self").click()
    toast_saying(browser, "C-ECHO to self succeeded")
    button(browser, "query", "self").click()
    fill_dialog(browser, "Query self (C-FIND)", {"PatientID": "REMOTE-1"})
    waiting(browser, 30).until(lambda b: "1 answers from self" in b.find_element(By.ID, "main").text)
    button(browser, "retrieve", "REMOTE^ONE").click()
    toast_saying(browser, "Retrieve started")

    open_page(browser, d.url, "#/peers")
    button(browser, "add…").click()
    fill_dialog(browser, "Add a peer", {"Name": "twin", "Url": d.url + "/"})
    waiting(browser, 10).until(lambda b: "twin" in b.find_element(By.ID, "main").text)
    button(browser, "test", "twin").click()
    toast_saying(browser, "twin answers")

    open_page(browser, d.url, "#/dicomweb")
    button(browser, "add…").click()
    fill_dialog(browser, "Add a DICOMweb server", {"Name": "me", "Url": d.url + "/dicom-web/", "HasDelete": True})
    waiting(browser, 10).until(lambda b: "me" in b.find_element(By.ID, "main").text)
    button(browser, "browse", "allowed").click()
    waiting(browser, 30).until(lambda b: "Studies on me" in b.find_element(By.ID, "main").text)
    listed = browser.find_element(By.ID, "main").text
    assert "REMOTE^ONE" in listed and "Knee" in listed
    button(browser, "retrieve", "REMOTE^ONE").click()
    toast_saying(browser, "Retrieve started")

    # Send the study to the peer, then modify and anonymize it: each a job, followed on the jobs page.
    open_page(browser, d.url, f"#/studies/{stored['ParentStudy']}")
    button(browser, "send").click()
    fill_dialog(browser, "Send this study", {"target": "peer:twin"})
    waiting(browser, 10).until(lambda b: b.current_url.endswith("#/jobs"))
    open_page(browser, d.url, f"#/studies/{stored['ParentStudy']}")
    button(browser, "anonymize").click()
    fill_dialog(browser, "Anonymize this study", {"Keep": "StudyDescription", "DicomVersion": "2021b"})
    open_page(browser, d.url, f"#/studies/{stored['ParentStudy']}")
    button(browser, "modify").click()
    fill_dialog(browser, "Modify this study", {"Replace": "StudyDescription=Knee, left"})
    wait_rendered(browser, "#/jobs")
    jobs_succeeded(browser, 6)  # and the C-MOVE's incoming store to this daemon, a job of its own
    assert console_errors(browser) == []

    studies = [d.get(f"/studies/{s}").json() for s in d.get("/studies").json()]
    descriptions = sorted(s["MainDicomTags"].get("StudyDescription", "") for s in studies)
    assert descriptions == ["Knee", "Knee", "Knee, left"]  # the source, its anonymized copy, its modified copy
    anonymized = next(s for s in studies if s["PatientMainDicomTags"]["PatientID"] != "REMOTE-1")
    assert anonymized["PatientMainDicomTags"]["PatientName"] != "REMOTE^ONE"

    # The DICOMweb server allows deletion: a study deleted there (here) from the page.
    open_page(browser, d.url, "#/dicomweb?server=me")
    rows_before = len(browser.find_elements(By.CSS_SELECTOR, "tbody tr[data-id]"))
    button(browser, "delete", "Knee, left").click()
    browser.find_element(By.ID, "confirm-ok").click()
    toast_saying(browser, "Study deleted on me")
    waiting(browser, 15).until(
        lambda b: len(b.find_elements(By.CSS_SELECTOR, "tbody tr[data-id]")) == rows_before - 1)
    assert len(d.get("/studies").json()) == 2


def test_a_failed_job_is_resubmitted_from_the_jobs_page(make_daemon, browser):
    d = make_daemon({"DicomModalities": {"nobody": ["NOBODY", "127.0.0.1", free_port()]}, "DicomScuTimeout": 2})
    stored = d.store(make_ct("FAIL-1"))
    open_page(browser, d.url, f"#/instances/{stored['ID']}")
    button(browser, "send").click()
    fill_dialog(browser, "Send this instance", {"target": "modality:nobody"})
    wait_rendered(browser, "#/jobs")
    waiting(browser, 60).until(lambda b: job_states(b) == ["Failure"])
    job = d.get("/jobs").json()[0]
    first = d.get(f"/jobs/{job}").json()
    assert first["ErrorDescription"] in browser.find_element(By.ID, "main").text
    waiting(browser, 10).until(
        lambda b: button(b, "resubmit").click() or True)
    # Run again (it fails again: nobody listens), with a new completion time.
    waiting(browser, 60).until(
        lambda b: d.get(f"/jobs/{job}").json().get("CompletionTime") not in (None, first["CompletionTime"]))
    waiting(browser, 30).until(lambda b: job_states(b) == ["Failure"])


def test_dropped_files_and_a_chosen_folder_are_uploaded(make_daemon, browser, tmp_path):
    d = make_daemon()
    open_page(browser, d.url, "#/upload")
    # A drop of two files (a page cannot be handed the machine's files by a drag; the same event is
    # built in the page, with File objects made from the bytes).
    first, second = make_ct("DROP-1", "DROPPED^ONE"), make_ct("DROP-2", "DROPPED^TWO")
    browser.execute_script("""
        const zone = document.querySelector('[data-role=drop]');
        const transfer = new DataTransfer();
        for (const [name, hex] of arguments[0]) {
          const bytes = new Uint8Array(hex.match(/../g).map((b) => parseInt(b, 16)));
          transfer.items.add(new File([bytes], name, {type: 'application/dicom'}));
        }
        zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: transfer, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
    """, [["one.dcm", first.hex()], ["two.dcm", second.hex()]])
    waiting(browser, 30).until(lambda b: "2 stored, 0 failed, 0 to go" in b.find_element(By.ID, "main").text)
    # A folder, with a subfolder, through the folder chooser.
    folder = tmp_path / "exam"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.dcm").write_bytes(make_ct("FOLDER-1", "FROM^FOLDER"))
    (folder / "sub" / "b.dcm").write_bytes(make_ct("FOLDER-1", "FROM^FOLDER"))
    browser.find_element(By.CSS_SELECTOR, "input[data-role=folder]").send_keys(str(folder))
    waiting(browser, 30).until(lambda b: "4 stored, 0 failed, 0 to go" in b.find_element(By.ID, "main").text)
    rows = browser.find_elements(By.CSS_SELECTOR, "tr[data-file]")
    names = sorted(r.find_element(By.TAG_NAME, "td").text for r in rows)
    assert names == ["exam/a.dcm", "exam/sub/b.dcm", "one.dcm", "two.dcm"]
    patients = {d.get(f"/patients/{p}").json()["MainDicomTags"]["PatientID"] for p in d.get("/patients").json()}
    assert patients == {"DROP-1", "DROP-2", "FOLDER-1"}
    assert console_errors(browser) == []
