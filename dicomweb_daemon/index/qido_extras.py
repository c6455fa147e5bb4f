"""What a search's results read in one piece, for what was stored before the index kept it so:
the QIDO_EXTRAS (dicom/stored_json.py) of instances, derived from their stored JSON; those of
series (series_info), from their first instance; each resource's main tags in one piece
(resource_tags), from its rows of main_tags. Each once per index, a batch at a time, while the
daemon serves (service.py)."""
from __future__ import annotations

from itertools import groupby

from ..dicom.stored_json import qido_extras
from .locking import retried
from .writes import tags_json


def _note(c, name: str) -> None:
    """A pass noted as done for the whole index (a row of globals): later starts do not look again."""
    c.execute("INSERT INTO globals (name, value) VALUES (?, '1') ON CONFLICT (name) DO NOTHING", (name,))


class QidoExtrasMixin:
    """Finding the instances without their QIDO_EXTRAS, and keeping them."""

    def _noted(self, name: str) -> bool:
        """Whether the pass ``name`` was noted as done (_note)."""
        return self.db.execute("SELECT 1 FROM globals WHERE name = ?", (name,)).fetchone() is not None

    def qido_extras_missing(self, after: int, limit: int) -> list[tuple[int, bytes]] | None:
        """``(internal, QIDO_EXTRAS)`` of up to ``limit`` instances after ``after`` that lack them,
        derived from their stored JSON; [] when none is left, None when that was noted already."""
        if self._noted("QidoExtras"):
            return None
        rows = self.db.execute("SELECT internal, metadata FROM instances WHERE qido_extras IS NULL AND internal > ? "
                               "ORDER BY internal LIMIT ?", (after, limit)).fetchall()
        return [(internal, qido_extras(self.decompress(blob))) for internal, blob in rows]

    @retried
    def keep_qido_extras(self, rows: list[tuple[int, bytes]]) -> None:
        """Each instance's QIDO_EXTRAS kept, unless it has them already; none given: every instance
        has them (noted: later starts do not look again)."""
        with self.transaction() as c:
            if not rows:
                _note(c, "QidoExtras")
            c.executemany("UPDATE instances SET qido_extras = ? WHERE internal = ? AND qido_extras IS NULL",
                          [(extras, internal) for internal, extras in rows])

    def series_extras_missing(self, after: int, limit: int) -> list[tuple[int, bytes | None]] | None:
        """``(internal, QIDO_EXTRAS of its first instance)`` of up to ``limit`` series after
        ``after`` that do not keep them; [] when none is left, None when that was noted already."""
        if self._noted("SeriesQidoExtras"):
            return None
        rows = self.db.execute(
            "SELECT s.internal, (SELECT i.qido_extras FROM instances i WHERE i.internal = "
            "(SELECT MIN(x.internal) FROM resources x WHERE x.parent = s.internal)) "
            "FROM series_info s WHERE s.qido_extras IS NULL AND s.internal > ? ORDER BY s.internal LIMIT ?",
            (after, limit)).fetchall()
        return [(internal, None if extras is None else bytes(extras)) for internal, extras in rows]

    @retried
    def keep_series_extras(self, rows: list[tuple[int, bytes | None]]) -> None:
        """Each series' QIDO_EXTRAS kept, unless it has them already (or none were found); none
        given: every series has them (noted)."""
        with self.transaction() as c:
            if not rows:
                _note(c, "SeriesQidoExtras")
            c.executemany("UPDATE series_info SET qido_extras = ? WHERE internal = ? AND qido_extras IS NULL",
                          [(extras, internal) for internal, extras in rows if extras is not None])

    def tags_missing(self, after: int, limit: int) -> list[tuple[int, str]] | None:
        """``(internal, its main tags in one piece)`` of up to ``limit`` resources after ``after``
        that do not keep them; [] when none is left, None when that was noted already."""
        if self._noted("TagsJson"):
            return None
        rows = self.db.execute(
            "SELECT r.internal, t.tag, t.value FROM resources r LEFT JOIN main_tags t ON t.internal = r.internal "
            "WHERE r.internal IN (SELECT x.internal FROM resources x WHERE x.internal > ? AND NOT EXISTS "
            "(SELECT 1 FROM resource_tags k WHERE k.internal = x.internal) ORDER BY x.internal LIMIT ?) "
            "ORDER BY r.internal", (after, limit)).fetchall()
        return [(internal, tags_json({tag: value for _i, tag, value in group if tag is not None}))
                for internal, group in groupby(rows, key=lambda row: row[0])]

    @retried
    def keep_tags(self, rows: list[tuple[int, str]]) -> None:
        """Each resource's main tags in one piece kept, unless it has them already (or is gone);
        none given: every resource has them (noted)."""
        with self.transaction() as c:
            if not rows:
                _note(c, "TagsJson")
            c.executemany("INSERT INTO resource_tags (internal, tags_json) SELECT internal, ? FROM resources "
                          "WHERE internal = ? ON CONFLICT (internal) DO NOTHING",
                          [(tags, internal) for internal, tags in rows])
