"""The metrics listener: ``GET /metrics`` without a token on a port of its own, for Prometheus.

Started by the app's lifespan when ``REGISTRY_METRICS__PORT`` is set, stopped with it; under
``serve --workers N`` by the ``serve`` parent instead, answering for every worker. It
serves that one path and nothing else (404 for any other path, 405 for any other method): the
API, the console and the health probes stay on the main port, with their own rules. Bind it
to an address only the monitoring network reaches (``REGISTRY_METRICS__HOST``, loopback by
default). A plain threaded ``http.server``: a scrape every few seconds needs no event loop, and
a slow scraper never holds an API worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

PATH = "/metrics"


class MetricsListener:
    def __init__(self, render: Callable[[], bytes], host: str, port: int) -> None:
        handler = type("Handler", (_Handler,), {"render": staticmethod(render)})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-listener", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    render: Callable[[], bytes]
    server_version = "adapter-registry-metrics"
    sys_version = ""
    timeout = 10  # seconds a connection may stay silent

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, *, body: bool) -> None:
        if self.path.split("?", 1)[0] != PATH:
            self._plain(404, b"not found: only /metrics is served on this port\n", body=body)
            return
        payload = self.render()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def _refuse(self) -> None:
        self._plain(405, b"method not allowed\n", body=True, allow="GET, HEAD")

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _refuse

    def _plain(self, status: int, text: bytes, *, body: bool, allow: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(text)))
        if allow:
            self.send_header("Allow", allow)
        self.end_headers()
        if body:
            self.wfile.write(text)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged (one every few seconds would drown the server's log)."""
