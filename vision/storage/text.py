"""Text at the database boundary: the same cleaning on SQLite and PostgreSQL.

PostgreSQL refuses NUL characters and strings longer than a ``VARCHAR(n)``; SQLite stores both.
The ORM validators in :mod:`vision.storage.models` pass every text attribute through
:func:`free_text` or :func:`exact_text`, so both databases store the same thing, and neither
ever raises a ``DataError`` for text. Core statements (``update(Clip).values(...)``) bypass the
validators: pass their values through :func:`clean_values`. Query parameters compared with a
text column (a login's e-mail) need :func:`sanitize`, since PostgreSQL refuses NUL there too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import inspect

#: Cap of unbounded ``Text`` columns (notes, error messages), in characters.
TEXT_CAP = 10_000

_LABELS = {"email": "the e-mail address", "password_hash": "the password hash", "role": "the role"}


def _clean_surrogates(value: str) -> str:
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)


def cap_of(obj: Any, key: str) -> int:
    """The cap of attribute ``key`` of an ORM object or class: its ``String(n)`` length, else :data:`TEXT_CAP`."""
    cls = obj if isinstance(obj, type) else type(obj)
    length = getattr(inspect(cls).columns[key].type, "length", None)
    return int(length) if length else TEXT_CAP


def clean_values(model: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` for a Core ``insert``/``update`` of ``model``, each through its attribute's validator.

    The result is what setting the attributes on an object would store: free text cut,
    keys checked (``ValueError`` when too long), NUL removed; keys without a validator pass unchanged.
    """
    validators: Mapping[str, Any] = inspect(model).validators
    out: dict[str, Any] = {}
    for key, value in values.items():
        entry = validators.get(key)
        out[key] = entry[0](model, key, value) if entry is not None else value
    return out


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
