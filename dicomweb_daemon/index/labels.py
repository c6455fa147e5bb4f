"""Labels of resources (Orthanc >= 1.12): short names attached to a patient, study, series or
instance, to group resources across the hierarchy (a project, a tenant, a review state) and to filter
``/tools/find`` by. A label has no value; each resource has a set of them."""
from __future__ import annotations

import re
from collections import defaultdict

from ..errors import BadRequest
from .locking import retried

#: What Orthanc accepts: letters, digits, ``_`` and ``-``, at most 64 of them.
LABEL = re.compile(r"[A-Za-z0-9_-]{1,64}")
CONSTRAINTS = ("All", "Any", "None")


def check_label(label: str) -> str:
    """``label`` if it is a valid label, else a 400 saying why."""
    if not isinstance(label, str) or not LABEL.fullmatch(label):
        raise BadRequest("Bad request", f"invalid label {label!r}: 1 to 64 letters, digits, '_' or '-'")
    return label


def labels_filter(labels: list[str], constraint: str, column: str = "r.internal") -> tuple[str, list]:
    """An SQL condition on resources (``column``: their internal id) for ``/tools/find``'s ``Labels``
    and ``LabelsConstraint``, with its parameters; no labels, no condition (``""``)."""
    if not labels:
        return "", []
    marks = ",".join("?" * len(set(labels)))
    if constraint == "All":
        return (f"(SELECT COUNT(DISTINCT label) FROM labels l WHERE l.internal = {column} "
                f"AND l.label IN ({marks})) = ?", [*set(labels), len(set(labels))])
    exists = f"EXISTS (SELECT 1 FROM labels l WHERE l.internal = {column} AND l.label IN ({marks}))"
    return (exists if constraint == "Any" else "NOT " + exists), list(set(labels))


class LabelsMixin:
    def labels_of(self, internals: list[int]) -> dict[int, list[str]]:
        """The labels of each resource, sorted (a resource without any is absent)."""
        return self.rows_by_internal("SELECT internal, label FROM labels WHERE internal IN ({marks}) ORDER BY label",
                                     internals)

    def resource_labels(self, public_id: str, level: str) -> list[str]:
        internal = self.internal_of(public_id, level)
        return self.labels_of([internal]).get(internal, [])

    @retried
    def add_label(self, public_id: str, level: str, label: str) -> None:
        check_label(label)
        with self.transaction() as c:
            _add(c, self.internal_of(public_id, level, conn=c), label)

    @retried
    def remove_label(self, public_id: str, level: str, label: str) -> None:
        with self.transaction() as c:
            internal = self.internal_of(public_id, level, conn=c)
            c.execute("DELETE FROM labels WHERE internal = ? AND label = ?", (internal, label))

    def all_labels(self) -> list[str]:
        """Every label in use, sorted (Orthanc's ``/tools/labels``)."""
        return [r[0] for r in self.db.execute("SELECT DISTINCT label FROM labels ORDER BY label")]

    def labels_under(self, public_ids: list[str]) -> dict[str, list[str]]:
        """Public ID -> labels, for the resources under ``public_ids`` (and themselves) and their
        ancestors that have any: what a modification with ``KeepLabels`` carries over."""
        out: dict[str, list[str]] = defaultdict(list)
        for public_id in public_ids:
            rows = self.db.execute(
                "WITH RECURSIVE down(internal) AS (SELECT internal FROM resources WHERE public_id = ? "
                "UNION SELECT r.internal FROM resources r JOIN down ON r.parent = down.internal), "
                "up(internal) AS (SELECT internal FROM resources WHERE public_id = ? "
                "UNION SELECT r.parent FROM resources r JOIN up ON r.internal = up.internal "
                "WHERE r.parent IS NOT NULL) "
                "SELECT r.public_id, l.label FROM labels l JOIN resources r USING (internal) "
                "WHERE l.internal IN (SELECT internal FROM down UNION SELECT internal FROM up)",
                (public_id, public_id))
            for owner, label in rows:
                if label not in out[owner]:
                    out[owner].append(label)
        return out

    @retried
    def put_labels(self, labels: dict[str, list[str]]) -> None:
        """Labels added to resources by public ID (those no longer in the index are skipped)."""
        with self.transaction() as c:
            for public_id, names in labels.items():
                row = c.execute("SELECT internal FROM resources WHERE public_id = ?", (public_id,)).fetchone()
                if row is None:
                    continue
                for label in names:
                    _add(c, row[0], label)


def _add(c, internal: int, label: str) -> None:
    """A label on a resource; one it has already is not an error."""
    c.execute("INSERT INTO labels (internal, label) VALUES (?, ?) ON CONFLICT DO NOTHING", (internal, label))
