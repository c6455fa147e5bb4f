"""Orthanc's XML form of JSON answers (web/xml_answers.py) and the /tools listing (web/rest/tool_list.py)."""
from __future__ import annotations

from xml.dom import minidom

from twisted.web.test.requesthelper import DummyRequest

from dicomweb_daemon.web.rest.tool_list import tool_names
from dicomweb_daemon.web.routing import json_response, route
from dicomweb_daemon.web.xml_answers import json_to_xml, wants_xml


def request_accepting(accept: str | None) -> DummyRequest:
    request = DummyRequest([b""])
    if accept is not None:
        request.requestHeaders.setRawHeaders(b"accept", [accept.encode()])
    return request


def test_json_as_xml():
    """Objects become elements named by their keys, arrays <item> elements, null "null", empty ones
    self-closed, text escaped."""
    xml = json_to_xml({"Done": False, "Changes": [], "Last": None, "List": ["a<b", 3], "Sub": {"K": "v"}})
    root = minidom.parseString(xml).getElementsByTagName("root")[0]
    assert root.getElementsByTagName("Done")[0].firstChild.data == "false"
    assert root.getElementsByTagName("Last")[0].firstChild.data == "null"
    assert root.getElementsByTagName("Changes")[0].childNodes == []
    items = root.getElementsByTagName("List")[0].getElementsByTagName("item")
    assert [i.firstChild.data for i in items] == ["a<b", "3"]
    assert root.getElementsByTagName("K")[0].firstChild.data == "v"
    assert xml.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n<root>\n  <')


def test_xml_only_when_asked_first():
    """As Orthanc: XML when application/xml is the first media type accepted, JSON otherwise."""
    assert wants_xml(request_accepting("application/xml"))
    assert wants_xml(request_accepting("application/xml;q=0.9, application/json"))
    assert not wants_xml(request_accepting("application/json, application/xml"))
    assert not wants_xml(request_accepting("text/xml"))
    assert not wants_xml(request_accepting(None))
    request = request_accepting("application/xml")
    body = json_response(request, ["now"])
    assert request.responseHeaders.getRawHeaders(b"content-type") == [b"application/xml; charset=utf-8"]
    assert minidom.parseString(body).getElementsByTagName("item")[0].firstChild.data == "now"


def test_tool_names_come_from_the_routes():
    class Family:
        @route("/tools/find", methods=("POST",))
        def find(self, request): ...

        @route("/tools/<name>/sub")
        def variable(self, request): ...

        @route("/tools/now")
        @route("/system")
        def now(self, request): ...

    assert tool_names([Family()]) == ["find", "now"]
