"""The WebDAV share (/webdav): the store browsed from a file manager, by patients, studies, dates and
UIDs; files put into uploads/ are stored; deletions only when allowed."""
from __future__ import annotations

import io
import zipfile
from xml.dom import minidom

import pytest
import requests

from tests.dicom_files import make_ct


def propfind(d, path: str, depth: int | str = 1) -> dict[str, dict]:
    """``{href: {"name", "folder", "size"}}`` of a PROPFIND answer, as a WebDAV client reads it."""
    r = requests.request("PROPFIND", d.url + path, headers={"Depth": str(depth)}, timeout=30)
    assert r.status_code == 207, r.text
    xml = minidom.parseString(r.content)
    assert xml.documentElement.tagName == "D:multistatus"
    out = {}
    for response in xml.getElementsByTagName("D:response"):
        href = response.getElementsByTagName("D:href")[0].firstChild.nodeValue
        name = response.getElementsByTagName("D:displayname")[0]
        size = response.getElementsByTagName("D:getcontentlength")
        out[requests.utils.unquote(href)] = {
            "name": name.firstChild.nodeValue if name.firstChild else "",
            "folder": bool(response.getElementsByTagName("D:collection")),
            "size": int(size[0].firstChild.nodeValue) if size else None}
    return out


def only_child(d, path: str) -> str:
    """The href of the one entry of a folder."""
    [href] = [h for h in propfind(d, path) if h.rstrip("/") != path.rstrip("/")]
    return href


@pytest.fixture
def share(make_daemon):
    return make_daemon({"WebDavDeleteAllowed": True})


def test_root_lists_the_views(share):
    """The root holds by-dates, by-patients, by-studies, by-uids and uploads, all folders."""
    assert propfind(share, "/webdav", 0) == {"/webdav/": {"name": "webdav", "folder": True, "size": None}}
    listed = propfind(share, "/webdav/")
    assert sorted(listed) == ["/webdav/", "/webdav/by-dates", "/webdav/by-patients", "/webdav/by-studies",
                              "/webdav/by-uids", "/webdav/uploads"]
    assert all(entry["folder"] for entry in listed.values())
    r = requests.request("PROPFIND", share.url + "/webdav/", headers={"Depth": "infinity"}, timeout=30)
    assert r.status_code == 403 and r.json()["HttpStatus"] == 403


def test_uploads_are_stored_and_browsed_in_every_view(share):
    """A DICOM file and a ZIP put into uploads/ are stored; the instance is reachable by patient,
    study, date and UIDs, and downloads byte for byte."""
    data = make_ct("DAV-1", "DOE^JANE", study_uid="1.2.3.4", series_uid="1.2.3.4.5", sop_uid="1.2.3.4.5.6",
                   study_date="20210315", extra={"StudyDescription": "Head", "SeriesDescription": "Axial"})
    assert requests.request("MKCOL", share.url + "/webdav/uploads/folder", timeout=30).status_code == 201
    assert requests.put(share.url + "/webdav/uploads/folder/one.dcm", data=data, timeout=30).status_code == 201
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a/two.dcm", make_ct("DAV-2"))
    assert requests.put(share.url + "/webdav/uploads/two.zip", data=archive.getvalue(), timeout=30).status_code == 201
    assert len(share.get("/instances").json()) == 2
    patient = "/webdav/by-patients/DAV-1 - DOE^JANE"
    assert patient in propfind(share, "/webdav/by-patients")
    study = only_child(share, patient)
    assert study.endswith("/20210315 - Head")
    series = only_child(share, study)
    assert series.endswith("/CT - Axial")
    [(href, entry)] = [(h, e) for h, e in propfind(share, series).items() if not e["folder"]]
    assert href.endswith("/1.2.3.4.5.6.dcm") and entry["size"] == len(data)
    assert share.get(href).content == data
    assert "/webdav/by-uids/1.2.3.4/1.2.3.4.5/1.2.3.4.5.6.dcm" in propfind(share, "/webdav/by-uids/1.2.3.4/1.2.3.4.5")
    assert "/webdav/by-dates/2021" in propfind(share, "/webdav/by-dates")
    assert "/webdav/by-dates/2021/2021-03" in propfind(share, "/webdav/by-dates/2021")
    assert "/webdav/by-dates/2021/2021-03/DAV-1 - DOE^JANE - Head" in propfind(share, "/webdav/by-dates/2021/2021-03")
    assert "/webdav/by-studies/DAV-1 - DOE^JANE - Head" in propfind(share, "/webdav/by-studies")
    assert share.get("/webdav/by-patients/nobody").status_code == 404


def test_deletes_only_when_allowed(make_daemon):
    """Deleting through the share removes the resource when WebDavDeleteAllowed is on; otherwise 403.
    Views themselves are never deleted; nothing is renamed."""
    closed = make_daemon()
    closed.store(make_ct("DAV-3", "X"))
    assert requests.delete(closed.url + "/webdav/by-patients/DAV-3 - X", timeout=30).status_code == 403
    assert requests.put(closed.url + "/webdav/by-patients/x.dcm", data=b"x", timeout=30).status_code == 403
    open_share = make_daemon({"WebDavDeleteAllowed": True})
    a = open_share.store(make_ct("DAV-4", "Y", study_uid="1.2.9", series_uid="1.2.9.1", sop_uid="1.2.9.1.1"))
    assert requests.delete(open_share.url + "/webdav/by-uids", timeout=30).status_code == 403
    r = requests.request("MOVE", open_share.url + "/webdav/by-uids/1.2.9", timeout=30)
    assert r.status_code == 403
    instance = open_share.url + "/webdav/by-uids/1.2.9/1.2.9.1/1.2.9.1.1.dcm"
    assert requests.delete(instance, timeout=30).status_code == 204
    assert open_share.get(f"/instances/{a['ID']}").status_code == 404


def test_locks_and_options_for_windows(share):
    """Windows locks before it writes and asks OPTIONS first: both are answered as DAV class 2."""
    r = requests.options(share.url + "/webdav/", timeout=30)
    assert r.headers["DAV"] == "1,2" and "PROPFIND" in r.headers["Allow"]
    r = requests.request("LOCK", share.url + "/webdav/uploads/x.dcm", timeout=30)
    assert r.status_code == 200 and r.headers["Lock-Token"].startswith("<urn:uuid:")
    assert requests.request("UNLOCK", share.url + "/webdav/uploads/x.dcm", timeout=30).status_code == 204


def test_share_can_be_turned_off(make_daemon):
    """With WebDavEnabled false, /webdav does not exist."""
    d = make_daemon({"WebDavEnabled": False})
    assert requests.request("PROPFIND", d.url + "/webdav/", headers={"Depth": "1"}, timeout=30).status_code == 404
