"""Orthanc's run-time switches of the DICOM server: the transfer syntaxes it accepts
(``/tools/accepted-transfer-syntaxes``, wildcards allowed) and whether it stores SOP classes it does
not know (``/tools/unknown-sop-class-accepted``). As in Orthanc, a change holds until the next start
reads the configuration again; new associations negotiate with it at once."""
from __future__ import annotations

import json

from ...dimse.contexts import accepted_syntaxes, matching_syntaxes
from ...errors import BadRequest
from ..routing import json_response, read_text_body, route

TRUE, FALSE = {"1", "true"}, {"0", "false"}


class DicomServerRoutes:
    def __init__(self, daemon):
        self.settings = daemon.settings

    @route("/tools/accepted-transfer-syntaxes")
    def get_syntaxes(self, request):
        return json_response(request, accepted_syntaxes(self.settings.AcceptedTransferSyntaxes))

    @route("/tools/accepted-transfer-syntaxes", methods=("PUT",))
    def put_syntaxes(self, request):
        text = read_text_body(request)
        try:
            patterns = json.loads(text)
        except ValueError:
            patterns = text  # text/plain: one UID or pattern
        if isinstance(patterns, str):
            patterns = [patterns]
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p for p in patterns):
            raise BadRequest("Bad request", "expected a transfer syntax UID (wildcards * and ? allowed), or a "
                                            "JSON list of them")
        chosen = matching_syntaxes(patterns)
        if not chosen:
            raise BadRequest("Bad request", f"no transfer syntax matches {', '.join(patterns)}")
        self.settings.values["AcceptedTransferSyntaxes"] = patterns
        return json_response(request, chosen)

    @route("/tools/unknown-sop-class-accepted")
    def get_unknown(self, request):
        return json_response(request, 1 if self.settings.UnknownSopClassAccepted else 0)

    @route("/tools/unknown-sop-class-accepted", methods=("PUT",))
    def put_unknown(self, request):
        value = read_text_body(request).lower()
        if value not in TRUE | FALSE:
            raise BadRequest("Bad request", f"expected 1, 0, true or false, not {value!r}")
        self.settings.values["UnknownSopClassAccepted"] = value in TRUE
        return json_response(request, {})
