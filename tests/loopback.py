"""Loopback HTTP servers for the download tests: a handler base that logs nothing and writes a body
in pieces (trickled, for a slow link), and a server run in a thread for the length of a ``with``."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator


class Handler(http.server.BaseHTTPRequestHandler):
    def send_pieces(self, body: bytes, piece: int, trickle: float = 0.0) -> None:
        """Write ``body`` in pieces of ``piece`` bytes, each flushed and followed by ``trickle``
        seconds where that is set; a client that hangs up ends the answer quietly."""
        try:
            for i in range(0, len(body), piece):
                self.wfile.write(body[i:i + piece])
                if trickle:
                    self.wfile.flush()
                    time.sleep(trickle)
        except OSError:
            pass

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serving(server: http.server.HTTPServer) -> Iterator[http.server.HTTPServer]:
    """``server`` answering on its own thread until the ``with`` ends."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
