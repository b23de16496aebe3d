"""uvicorn's httptools protocol with the two bounds it lacks: header size and header time.

uvicorn (0.54) accepts request lines and headers of any size and waits for them forever: a
client that connects and sends nothing, or one header byte every few seconds (slow-loris),
holds a connection and its memory indefinitely, and the keep-alive timer is cancelled by the
first byte of the next request. This subclass, selected by ``serve`` (``--http``), adds:

- a header deadline (``server.header_timeout_s``): armed when a connection is made and whenever
  a chunk of data leaves a request's headers incomplete, disarmed when they are complete (a
  request whose headers arrive in one read — nearly all — creates no timer); on expiry the
  connection gets a ``408 request_timeout`` and is closed;
- a header budget (``server.max_header_bytes``): the raw bytes received while a request's
  headers are incomplete (request line, header names and values: httptools keeps a partial
  header value in memory until it is complete, so only the raw count bounds it); past it the
  connection gets ``431 headers_too_large`` and is closed.

Body time and size are bounded per request by :mod:`registry.api.guard` (an ASGI middleware),
where the route is known.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from registry.errors import HeadersTooLarge, RegistryError, RequestTimeout
from registry.settings import ServerSettings, get_settings

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def error_response(error: RegistryError) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 response with ``error``'s body."""
    body = json.dumps(error.to_body()).encode()
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (error.status_code, _REASONS.get(error.status_code, b"Error")),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` with a header deadline and a header size budget."""

    #: Limits for every connection of this process; read once from the environment's settings
    #: (``serve`` runs in the same environment) unless set explicitly (tests).
    limits: ServerSettings | None = None

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = type(self).limits
        if limits is None:
            limits = type(self).limits = get_settings().server
        self._max_header_bytes = limits.max_header_bytes
        self._header_timeout_s = limits.header_timeout_s
        # Not inside a body: the bytes coming next are a request line and headers. Raw bytes are
        # counted while they are incomplete: httptools keeps a partial header value in memory
        # until it is complete, so its callbacks alone cannot bound it.
        self._in_headers = True
        # A request has begun and its headers are incomplete (``_begun_now``: it began in the
        # read being parsed, whose earlier bytes may belong to the previous request).
        self._headers_pending = False
        self._begun_now = False
        self._pending_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None

    # --- the header deadline ---------------------------------------------------------------

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self._header_timeout_s, self._header_timeout)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        self._refuse(RequestTimeout("request headers were not received in time"))

    def _too_large(self) -> None:
        self._disarm_header_timer()
        self._refuse(HeadersTooLarge("request line and headers are too large"))

    def _refuse(self, error: RegistryError) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(error_response(error))
            self.transport.close()

    # --- uvicorn / httptools hooks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._in_headers and self._pending_bytes + len(data) > self._max_header_bytes:
            # A large read while headers are being received: refuse unless they end in it,
            # within the budget (only large reads pay for the search).
            end = data.find(b"\r\n\r\n")
            if end == -1 or self._pending_bytes + end > self._max_header_bytes:
                self._too_large()
                return
        self._begun_now = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            self._disarm_header_timer()
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        if self._headers_pending:
            # A request begun in an earlier read: this whole read is request line and headers.
            if not self._begun_now:
                self._pending_bytes += len(data)
            if self._pending_bytes > self._max_header_bytes:
                self._too_large()
            elif self._header_timer is None:
                self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._headers_pending = True
        self._begun_now = True

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_headers = True  # what comes next on this connection is a new request

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        self._in_headers = self._headers_pending = False
        self._pending_bytes = 0
        super().on_headers_complete()
