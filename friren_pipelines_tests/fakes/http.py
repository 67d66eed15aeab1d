"""A local HTTP server on 127.0.0.1 that answers from a route table: the network edge in tests.

Routes map (method, path) to a `Reply` or to a function of the `Request` returning one, so a test
can serve recorded bodies, inject faults (status codes, headers, delays, malformed bodies) and
read back every request it received.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # bytes are sent as they are; anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (for timeout tests)

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


Handler = Reply | Callable[[Request], Reply]


def recorded(relative_path: str) -> Any:
    """A recorded body from ../shared/data, parsed as JSON."""
    return json.loads((SHARED_DATA / relative_path).read_text())


class FakeHttpServer:
    """Route table + request log behind a threaded HTTP server; use as a context manager."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                return

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                    at=time.monotonic(),
                )
                with server._lock:
                    server.requests.append(request)
                reply = server._reply_for(request)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.payload()
                try:
                    self.send_response(reply.status)
                    headers = {"Content-Type": "application/json", **reply.headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve  # noqa: N815 (http.server names)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        # A short poll interval makes shutdown (once per test) take milliseconds, not 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(self, method: str, path_pattern: str, handler: Handler) -> None:
        """Answer `method` requests whose path fully matches the regex; later routes win."""
        self._routes.insert(0, (method.upper(), re.compile(path_pattern), handler))

    def _reply_for(self, request: Request) -> Reply:
        for method, pattern, handler in self._routes:
            if method == request.method and pattern.fullmatch(request.path):
                return handler(request) if callable(handler) else handler
        return Reply(404, {"code": 40410000, "message": f"no fake route for {request.path}"})

    def calls(self, path_pattern: str) -> list[Request]:
        pattern = re.compile(path_pattern)
        with self._lock:
            return [r for r in self.requests if pattern.fullmatch(r.path)]

    def __enter__(self) -> FakeHttpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def fake_server() -> Iterator[FakeHttpServer]:
    with FakeHttpServer() as server:
        yield server
