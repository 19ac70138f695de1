"""Field-level reading shared by every raw source: aliases, value coercion and located field problems.

A raw record is a dict (a JSON object or a SQLite row). ``RecordFields`` reads its fields under the aliases a
reasonable app would use, coerces each value (``to_*`` functions below), and records a located problem when a
value is wrong: an optional field becomes its default (``invalid_field``), a required one skips the record
(``SkipRecord``, reason ``missing_field`` or ``invalid_field``).

Coercions accepted everywhere, in JSON and SQLite alike:
- ids: strings, or numbers (``7`` and ``7.0`` become ``"7"``);
- timestamps: ISO 8601 strings (with ``Z``, an offset, or none, which is taken as UTC; date-only is midnight UTC),
  or epoch numbers (seconds, or milliseconds when above 1e11), also as numeric strings; all become aware UTC;
- lists (``steps``, ``memory_refs``, ``aliases``, ``fact_ids``, ``available_tools``) and objects (``args``,
  ``ui_context``, ``attributes``) as JSON values or as JSON text;
- roles, case-insensitive: ``human`` is user, ``ai``/``bot`` assistant, ``function`` tool;
- statuses: ``ok``/``succeeded``/true are success, ``failed``/``failure``/false are error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Any, TypeVar

from dexter_brain.raw.records import ToolSpec
from dexter_brain.raw.report import SourceReport

T = TypeVar("T")

MAX_FIELD_CHARS = 100_000
"""The longest text a field keeps (about 25 pages): a longer value (a pasted log, a base64 blob) is cut to its
first ``MAX_FIELD_CHARS`` characters with a located ``truncated`` problem, and the record is kept. The same
holds for each item of a list of texts (``steps``, ``aliases``)."""

EPOCH_MILLISECONDS_ABOVE = 1e11
"""Epoch numbers above this are milliseconds: 1e11 seconds is the year 5138, 1e11 ms is March 1973."""

ROLES = {"user": "user", "human": "user", "assistant": "assistant", "ai": "assistant", "bot": "assistant",
         "system": "system", "tool": "tool", "function": "tool"}
STATUSES = {"success": "success", "ok": "success", "succeeded": "success", "successful": "success",
            "true": "success", "error": "error", "failed": "error", "failure": "error", "fail": "error",
            "false": "error"}


class FieldError(ValueError):
    """A field value that cannot be coerced; the message says what was expected and what was found."""


class SkipRecord(Exception):
    """Raised by ``RecordFields.required``; the problem has already been recorded."""


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _from_json_text(value: Any, expected: str) -> Any:
    """Decode JSON text (a SQLite column, or a JSON string holding JSON); other values pass through."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise FieldError(f"expected {expected} or its JSON text, got {_shown(value)} ({error.msg})") from None
    return value


def to_text(value: Any) -> str:
    """A string field; numbers are written out, other types are an error."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise FieldError(f"expected a string, got {_shown(value)}")


def to_content(value: Any) -> str:
    """Message content: a string, or structured content (a tool result) kept as compact JSON text."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return to_text(value)


def to_id(value: Any) -> str:
    """An id: a non-empty string, or an integral number written as an integer."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = to_text(value).strip()
    if not text:
        raise FieldError("expected a non-empty id, got an empty string")
    return text


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise FieldError(f"expected an integer, got {_shown(value)}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FieldError(f"expected an integer, got {_shown(value)}") from None
    if not number.is_integer():
        raise FieldError(f"expected an integer, got {_shown(value)}")
    return int(number)


def to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise FieldError(f"expected a number, got {_shown(value)}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise FieldError(f"expected a number, got {_shown(value)}") from None


def to_timestamp(value: Any) -> datetime | None:
    """An aware UTC datetime from ISO text or epoch seconds/milliseconds; empty text is no timestamp."""
    if isinstance(value, bool):
        raise FieldError(f"expected an ISO 8601 timestamp or epoch number, got {_shown(value)}")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return _parse_iso(text)
        except FieldError:
            try:
                value = float(text)  # epoch numbers stored as text, common in SQLite
            except ValueError:
                raise FieldError(f"expected an ISO 8601 timestamp or epoch number, got {_shown(value)}") from None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if abs(value) > EPOCH_MILLISECONDS_ABOVE else value
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise FieldError(f"epoch number {_shown(value)} is out of range") from None
    raise FieldError(f"expected an ISO 8601 timestamp or epoch number, got {_shown(value)}")


def _parse_iso(text: str) -> datetime:
    # fromisoformat takes "Z" only from Python 3.11 on; the SDK supports 3.10.
    iso = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(iso), datetime.min.time())
        except ValueError:
            raise FieldError(f"expected an ISO 8601 timestamp or epoch number, got {_shown(text)}") from None
    # A naive timestamp is taken as UTC: apps that log local time without an offset cannot be told apart.
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def to_role(value: Any) -> str:
    role = ROLES.get(to_text(value).strip().lower())
    if role is None:
        raise FieldError(f"expected a role (user, assistant, system, tool), got {_shown(value)}")
    return role


def to_status(value: Any) -> str:
    if isinstance(value, bool):
        return "success" if value else "error"
    if isinstance(value, int) and value in (0, 1):
        return "success" if value else "error"
    status = STATUSES.get(str(value).strip().lower()) if isinstance(value, str) else None
    if status is None:
        raise FieldError(f"expected a status (success/ok/succeeded/true or error/failed/failure/false), "
                         f"got {_shown(value)}")
    return status


def to_mapping(value: Any) -> dict[str, Any]:
    """A JSON object, given as an object or as JSON text; empty text or null is an empty object."""
    if isinstance(value, str) and not value.strip():
        return {}
    value = _from_json_text(value, "a JSON object")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FieldError(f"expected a JSON object, got {_shown(value)}")
    return value


def _to_list(value: Any) -> list[Any]:
    if isinstance(value, str) and not value.strip():
        return []
    value = _from_json_text(value, "a JSON array")
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldError(f"expected a JSON array, got {_shown(value)}")
    return value


def to_text_list(value: Any) -> tuple[str, ...]:
    """A list of strings (steps, aliases), as an array or JSON text."""
    items = _to_list(value)
    try:
        return tuple(to_text(item) for item in items)
    except FieldError as error:
        raise FieldError(f"array item: {error}") from None


def to_id_list(value: Any) -> tuple[str, ...]:
    """A list of ids (memory_refs, fact_ids), as an array or JSON text; numeric ids become strings."""
    items = _to_list(value)
    try:
        return tuple(to_id(item) for item in items)
    except FieldError as error:
        raise FieldError(f"array item: {error}") from None


@lru_cache(maxsize=1 << 14)
def _tool_spec(name: str, description: str | None) -> ToolSpec:
    # Specs are frozen and repeat on every logged call (the same dozen tools offered each time): one shared
    # object per (name, description) keeps a large tool log from holding millions of identical records.
    return ToolSpec(name=name, description=description)


def to_tool_specs(value: Any) -> tuple[ToolSpec, ...]:
    """``available_tools``: names or ``{name, description}`` objects, as an array or JSON text."""
    specs = []
    for item in _to_list(value):
        if isinstance(item, dict):
            name = item.get("name")
            if name is None:
                name = item.get("tool", item.get("tool_name"))
            description = item.get("description")
            if name is None:
                raise FieldError(f"tool entry without a name: {_shown(item)}")
            specs.append(_tool_spec(to_id(name), None if description is None else to_text(description)))
        else:
            try:
                specs.append(_tool_spec(to_id(item), None))
            except FieldError:
                raise FieldError(f"expected a tool name or {{name, description}}, got {_shown(item)}") from None
    return tuple(specs)


class RecordFields:
    """Reads the fields of one raw record (JSON object or SQLite row) under aliases, recording located problems."""

    def __init__(self, record: dict[str, Any], source: SourceReport, location: str):
        self.record = record
        self.source = source
        self.location = location

    def _find(self, names: tuple[str, ...]) -> tuple[str, Any]:
        for name in names:
            value = self.record.get(name)
            if value is not None:
                return name, value
        return names[0], None

    def has(self, *names: str) -> bool:
        """Whether one of the aliases holds a value (an empty string counts as no value)."""
        return not _is_blank(self._find(names)[1])

    def required(self, names: tuple[str, ...], coerce: Callable[[Any], T], *, is_empty_ok: bool = False) -> T:
        """The value of the first alias present; a missing or invalid value (or an empty one, unless
        ``is_empty_ok``) is reported and skips the record."""
        name, value = self._find(names)
        if value is None or (not is_empty_ok and _is_blank(value)):
            also = f" (also looked for {', '.join(repr(n) for n in names[1:])})" if len(names) > 1 else ""
            found = "is empty" if value is not None else "is missing"
            self.source.add(self.location, "missing_field", f"required field '{name}' {found}{also}; record skipped",
                            field=name, is_skipped=True)
            raise SkipRecord
        try:
            return self._capped(name, coerce(value))
        except FieldError as error:
            self.source.add(self.location, "invalid_field", f"{error}; record skipped", field=name, is_skipped=True)
            raise SkipRecord from None

    def optional(self, names: tuple[str, ...], coerce: Callable[[Any], T], default: T) -> T:
        """The value of the first alias present, or ``default`` when absent, empty, or invalid (invalid is
        reported)."""
        name, value = self._find(names)
        if _is_blank(value):
            return default
        try:
            return self._capped(name, coerce(value))
        except FieldError as error:
            self.source.add(self.location, "invalid_field", f"{error}; field ignored, record kept", field=name)
            return default

    def _capped(self, name: str, value: T) -> T:
        """``value`` with its text (or each text of a tuple) cut to ``MAX_FIELD_CHARS``, reported when cut."""
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            self._report_cut(name, f"text of {len(value):,} characters")
            return value[:MAX_FIELD_CHARS]
        if isinstance(value, tuple) and any(isinstance(v, str) and len(v) > MAX_FIELD_CHARS for v in value):
            long = [i for i, v in enumerate(value) if isinstance(v, str) and len(v) > MAX_FIELD_CHARS]
            self._report_cut(name, f"item {long[0]} of {len(value[long[0]]):,} characters"
                             + (f" (and {len(long) - 1} more items)" if len(long) > 1 else ""))
            return tuple(v[:MAX_FIELD_CHARS] if isinstance(v, str) else v for v in value)
        return value

    def _report_cut(self, name: str, what: str) -> None:
        self.source.add(self.location, "truncated", f"{what} cut to its first {MAX_FIELD_CHARS:,} characters "
                        f"(the longest a field keeps); record kept", field=name)


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
