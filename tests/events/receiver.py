"""A webhook receiver for the tests: a separate process (http.server) on loopback.

Usage: ``python receiver.py PORT LOG MODE_FILE``. Every request is appended to ``LOG`` as one
JSON line (path, headers, body, the status answered). ``MODE_FILE`` holds how to answer:
``ok`` (204), ``fail`` (500), ``gone`` (410); re-read on every request.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

STATUS = {"ok": 204, "fail": 500, "gone": 410}


def main() -> None:
    port, log, mode_file = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            mode = mode_file.read_text().strip() if mode_file.exists() else "ok"
            status = STATUS.get(mode, 500)
            record = {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode(),
                "status": status,
            }
            with log.open("a") as f:
                f.write(json.dumps(record) + "\n")
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
