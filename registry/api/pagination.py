"""Keyset pagination: ``{items, next_page_token}``; the token is an opaque, checked cursor."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from registry.errors import InvalidPageToken

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_page_token: str | None = None


def make_page(items: list[T], *, more: bool, key: Callable[[T], list[Any]]) -> Page[T]:
    """``items`` as a page; when ``more`` (the query found a row past the page) the token is the
    cursor ``key`` of the last item."""
    return Page(items=items, next_page_token=encode_token(key(items[-1])) if more else None)


def page_of(
    rows: Sequence[R], limit: int, read: Callable[[R], T], key: Callable[[T], list[Any]]
) -> Page[T]:
    """The page of a query that asked for ``limit + 1`` rows: the first ``limit`` rows through
    ``read``; a row past them means there is a next page (its token: ``key`` of the last item)."""
    return make_page([read(row) for row in rows[:limit]], more=len(rows) > limit, key=key)


def encode_token(key: list[Any]) -> str:
    raw = json.dumps(key, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, *, arity: int, types: tuple[type, ...]) -> list[Any] | None:
    """Decode a cursor made by ``encode_token``; anything else is ``invalid_page_token``."""
    if token is None or token == "":
        return None
    if len(token) > 512:
        raise InvalidPageToken("page token too long")
    try:
        padded = token + "=" * (-len(token) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError) as exc:
        raise InvalidPageToken("malformed page token") from exc
    if (
        not isinstance(key, list)
        or len(key) != arity
        or not all(
            isinstance(k, t) and not isinstance(k, bool) for k, t in zip(key, types, strict=True)
        )
    ):
        raise InvalidPageToken("page token does not belong to this listing")
    return key


def decode_name_token(token: str | None) -> str | None:
    """The ``[name]`` cursor of a listing by name: the previous page's last name."""
    cursor = decode_token(token, arity=1, types=(str,))
    return None if cursor is None else str(cursor[0])


def decode_time_token(token: str | None) -> tuple[datetime, uuid.UUID] | None:
    """The ``[created_at, id]`` cursor of a newest-first listing (``time_key``): a time zone-aware
    ISO 8601 time and a UUID; anything else is ``invalid_page_token``."""
    cursor = decode_token(token, arity=2, types=(str, str))
    if cursor is None:
        return None
    try:
        at, ident = datetime.fromisoformat(cursor[0]), uuid.UUID(cursor[1])
    except ValueError as exc:
        raise InvalidPageToken("malformed page token") from exc
    if at.tzinfo is None:
        raise InvalidPageToken("malformed page token")
    return at, ident


def time_key(created_at: datetime, ident: uuid.UUID) -> list[Any]:
    """The cursor ``decode_time_token`` reads back."""
    return [created_at.isoformat(), str(ident)]
