"""Text at the database boundary: the same cleaning on SQLite and PostgreSQL.

PostgreSQL refuses NUL characters and strings longer than a ``VARCHAR(n)``; SQLite stores both.
The ORM validators in :mod:`vision.storage.models` pass every text attribute through
:func:`free_text` or :func:`exact_text`, so both databases store the same thing, and neither
ever raises a ``DataError`` for text.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect

#: Cap of unbounded ``Text`` columns (notes, error messages), in characters.
TEXT_CAP = 10_000

_LABELS = {"email": "the e-mail address", "password_hash": "the password hash", "role": "the role"}


def _clean_surrogates(value: str) -> str:
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)


def cap_of(obj: Any, key: str) -> int:
    """The length cap of attribute ``key`` of an ORM object: its ``String(n)`` length, else :data:`TEXT_CAP`."""
    length = getattr(inspect(type(obj)).columns[key].type, "length", None)
    return int(length) if length else TEXT_CAP


def free_text(obj: Any, key: str, value: str | None) -> str | None:
    """Clean free text (names, notes, messages) and cut it to the column's cap.

    ``None`` stays ``None``; a non-string is refused with ``TypeError``.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{key} must be text")
    return sanitize(value)[: cap_of(obj, key)]


def exact_text(obj: Any, key: str, value: str | None) -> str | None:
    """Clean a key or code (e-mail, status, digest) and refuse it when longer than the column's cap.

    Raises
    ------
    ValueError
        The cleaned text is longer than the cap ("the e-mail address is longer than 254 characters").
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{key} must be text")
    value = sanitize(value)
    cap = cap_of(obj, key)
    if len(value) > cap:
        label = _LABELS.get(key, "the " + key.replace("_", " "))
        raise ValueError(f"{label} is longer than {cap} characters")
    return value


def sanitize(value: str) -> str:
    """``value`` without NUL characters and with lone surrogates (unencodable) replaced by U+FFFD."""
    value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = _clean_surrogates(value)
    return value
