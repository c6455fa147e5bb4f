"""QIDO-RS matching of one attribute (PS3.18 §8.3.4, PS3.4 §C.2.2.2), as an SQL condition on
indexed columns or as a test on DICOM JSON values, with the same meaning both ways.

Single value, ``*`` ``?`` wildcards, ranges ``a-b`` ``a-`` ``-b`` for DA / TM / DT, lists of UIDs
separated by ``\\`` or ``,`` and of other values by ``\\``. Person names always match without case;
other strings too when DicomWeb.QidoCaseSensitive is false. ``fuzzymatching=true`` matches person
names ignoring case and accents, from the start of any name component (PS3.4 §C.2.2.2.1.1 leaves
the fuzzy rule to the implementation).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from ..dicom.qido_model import json_texts, tag_hex
from .find_scope import as_number
from .normalize import dicom_glob, normalize

RANGE_VRS = {"DA", "TM", "DT"}
EXACT_VRS = RANGE_VRS | {"UI", "IS", "DS", "SL", "SS", "UL", "US", "FL", "FD", "SV", "UV", "AT"}
# Above every character of dates and times: "-20200131" must keep 20200131 and 20200131.5.
_TOP = "~"
_UID_SEPARATORS = re.compile(r"[\\,]")  # lists of UIDs: backslash or comma (PS3.18 §8.3.4.1)
_SEPARATOR = re.compile(r"\\")


@dataclass
class Filter:
    """One matching key of a query: ``tag`` (keyword when it has one) and its pattern.

    A key inside sequences (PS3.18 §8.3.4.1 ``{attributeID}.{attributeID}``) has ``path``, the tags
    from the top-level sequence down; ``tag``, ``keyword`` and ``vr`` are then the last one's, and
    it matches when any item at the end of the path holds a matching value."""

    tag: int
    keyword: str
    vr: str
    pattern: str
    case_sensitive: bool = True
    fuzzy: bool = False
    path: tuple[int, ...] = ()

    @property
    def path_keys(self) -> list[str]:
        """The DICOM JSON keys from the top-level attribute down to the matched one."""
        return [tag_hex(t) for t in (self.path or (self.tag,))]

    def matches_dataset(self, ds: dict) -> bool:
        """Whether a DICOM JSON dataset (stored at ingest) holds a value matching this key."""
        keys = self.path_keys
        attrs = [ds.get(keys[0])]
        for key in keys[1:]:
            attrs = [item.get(key) for a in attrs if a for item in a.get("Value") or () if isinstance(item, dict)]
        return self.matches([t for a in attrs for t in json_texts(a)])

    @property
    def universal(self) -> bool:
        return self.pattern in ("", "*")

    @property
    def insensitive(self) -> bool:
        return self.vr == "PN" or (not self.case_sensitive and self.vr not in EXACT_VRS)

    @property
    def is_range(self) -> bool:
        return self.vr in RANGE_VRS and "-" in self.pattern and "\\" not in self.pattern

    @property
    def values(self) -> list[str]:
        return (_UID_SEPARATORS if self.vr == "UI" else _SEPARATOR).split(self.pattern) or [""]

    @cached_property
    def _regexes(self) -> list[re.Pattern]:
        out = []
        for v in self.values:
            v = normalize(v) if self.fuzzy and self.vr == "PN" else v
            body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in v)
            if self.fuzzy and self.vr == "PN":
                body = f"(?:^|.*[\\^ =]){body}.*"
            out.append(re.compile(body, re.DOTALL | (re.IGNORECASE if self.insensitive else 0)))
        return out

    def matches(self, texts: list[str]) -> bool:
        """Whether any of the values ``texts`` of a resource matches (for non-indexed attributes)."""
        if self.universal:
            return True
        if self.is_range:
            low, high = (s.strip() for s in self.pattern.split("-", 1))
            return any((not low or t >= low) and (not high or t <= high + _TOP) for t in texts)
        for t in texts:
            t = normalize(t) if self.fuzzy and self.vr == "PN" else t
            if any(rx.fullmatch(t) for rx in self._regexes):
                return True
        return False

    def sql(self, value_col: str, norm_col: str | None = None) -> tuple[str, list]:
        """The condition on an indexed text column (and its normalized twin) for this key."""
        if self.is_range:
            low, high = (s.strip() for s in self.pattern.split("-", 1))
            conds, params = [], []
            if low:
                conds.append(f"{value_col} >= ?")
                params.append(low)
            if high:
                conds.append(f"{value_col} <= ?")
                params.append(high + _TOP)
            return "(" + (" AND ".join(conds) or "1") + ")", params
        if self.vr == "UI" and not any(c in self.pattern for c in "*?"):
            values = self.values
            return f"{value_col} IN ({','.join('?' * len(values))})", values
        conds, params = [], []
        for v in self.values:
            c, p = self._one(v, value_col, norm_col)
            conds.append(c)
            params += p
        return "(" + " OR ".join(conds) + ")", params

    def _one(self, v: str, value_col: str, norm_col: str | None) -> tuple[str, list]:
        if self.vr == "PN":
            return self._person_name(v, value_col, norm_col)
        wild = "*" in v or "?" in v
        op = "GLOB" if wild else "="
        arg = dicom_glob if wild else (lambda s: s)
        if self.insensitive and norm_col:
            # The normalized column finds candidates through its index; the upper-cased value keeps
            # accents significant.
            return (f"({norm_col} {op} ? AND qido_upper({value_col}) {op} ?)",
                    [arg(normalize(v)), arg(v.upper())])
        if self.insensitive:
            return f"qido_upper({value_col}) {op} ?", [arg(v.upper())]
        return f"{value_col} {op} ?", [arg(v)]

    def _person_name(self, v: str, value_col: str, norm_col: str | None) -> tuple[str, list]:
        """A name is ``alphabetic=ideographic=phonetic``: the pattern may match any group."""
        if self.fuzzy:
            start = dicom_glob(normalize(v)).rstrip("*") + "*"
            col = norm_col or f"qido_normalize({value_col})"
            return "(" + " OR ".join(f"{col} GLOB ?" for _ in range(4)) + ")", \
                [start] + [f"*{sep}{start}" for sep in "^ ="]
        forms = ("{}", "{}=*", "*={}", "*={}=*")
        upper = [f.format(dicom_glob(v.upper())) for f in forms]
        cond = "(" + " OR ".join(f"qido_upper({value_col}) GLOB ?" for _ in forms) + ")"
        if not norm_col:
            return cond, upper
        # Normalized forms first: a cheap filter before the accent-keeping comparison.
        norm = [f.format(dicom_glob(normalize(v))) for f in forms]
        return ("((" + " OR ".join(f"{norm_col} GLOB ?" for _ in forms) + f") AND {cond})", norm + upper)


def qido_upper(value: str | None) -> str | None:
    """SQLite's upper() only knows ASCII; names are not only ASCII."""
    return value.upper() if value is not None else None


def qido_normalize(value: str | None) -> str | None:
    return normalize(value) if value is not None else None


def register_functions(conn) -> None:
    """The Python functions of the index's SQL (the conditions of :meth:`Filter.sql`, an order of
    /tools/find), on each SQLite connection (PostgreSQL: pg_sql.FUNCTIONS)."""
    conn.create_function("qido_upper", 1, qido_upper, deterministic=True)
    conn.create_function("qido_normalize", 1, qido_normalize, deterministic=True)
    conn.create_function("as_number", 1, as_number, deterministic=True)  # /tools/find's OrderBy (find_scope.py)
