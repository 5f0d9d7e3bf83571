"""`SandboxServer`: the sandbox app on a background HTTPS server; `serve` for the CLI."""

from __future__ import annotations

import contextlib
import io
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import create_app
from .sandbox import SandboxCRM
from .tls import write_self_signed_cert


class QuietRequestHandler(WSGIRequestHandler):
    """Request handler that never writes a per-request log line."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None

    def log(self, type: str, message: str, *args: object) -> None:
        if type == "error":
            super().log(type, message, *args)


MAX_BUFFERED_BODY = 64 * 1024 * 1024


class _FastClose:
    """WSGI wrapper that ends TLS connections as soon as the response is written.

    werkzeug closes every connection after one response, but first polls the socket
    for 10 ms to drain unread request bytes; over TLS that poll always runs out, which
    caps a client at ~70 requests/s. Once a response with a known length has been
    written in full, there is nothing left to drain: shutting the read side makes the
    poll return at once.
    """

    def __init__(self, app: Any):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        sized = False
        # Read the request body up front so nothing is left unread when the read side is
        # shut (unread bytes would turn the close into a reset). Chunked uploads are left to
        # werkzeug's own draining.
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if not chunked and 0 < length <= MAX_BUFFERED_BODY:
            environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length))
        drained = not chunked and length <= MAX_BUFFERED_BODY

        def _start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal sized
            names = {k.lower() for k, _ in headers}
            sized = "content-length" in names or status.startswith(("204", "304"))
            return start_response(status, headers, exc_info)

        body = self.app(environ, _start)
        try:
            yield b""  # forces the status line and headers out first
            yield from body
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        sock = environ.get("werkzeug.socket")
        if sized and drained and sock is not None and environ.get("wsgi.url_scheme") == "https":
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RD)


def _ssl_context(cert_dir: Path) -> tuple[ssl.SSLContext, Path]:
    cert, key = write_self_signed_cert(cert_dir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context, cert


class SandboxServer:
    """Runs the sandbox on ``https://127.0.0.1:<free port>`` in a background thread.

    Usage::

        with SandboxServer(sandbox) as server:
            requests.get(server.url + "/_sandbox/health", verify=server.ca_file)

    Args:
        sandbox: the state to serve.
        host: interface to bind (default loopback).
        port: 0 picks a free port.
        cert_dir: where to write cert.pem/key.pem (default: a temp dir removed on stop).
    """

    def __init__(
        self,
        sandbox: SandboxCRM,
        host: str = "127.0.0.1",
        port: int = 0,
        cert_dir: str | Path | None = None,
    ):
        self.sandbox = sandbox
        self.host = host
        self.port = port
        self._own_dir = cert_dir is None
        self.cert_dir = (
            Path(cert_dir) if cert_dir else Path(tempfile.mkdtemp(prefix="sandbox-tls-"))
        )
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._ca_file: Path | None = None

    def start(self) -> SandboxServer:
        """Start serving (idempotent) and return self."""
        if self._server is not None:
            return self
        context, cert = _ssl_context(self.cert_dir)
        self._ca_file = cert
        self._server = make_server(
            self.host,
            self.port,
            _FastClose(create_app(self.sandbox)),
            threaded=True,
            ssl_context=context,
            request_handler=QuietRequestHandler,
        )
        self.port = self._server.server_port
        self.sandbox.base_url = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sandbox-crm", daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        """Base URL, e.g. ``https://127.0.0.1:54321``."""
        return f"https://{self.host}:{self.port}"

    @property
    def ca_file(self) -> str:
        """Path of the PEM certificate clients should trust."""
        if self._ca_file is None:
            raise RuntimeError("server not started")
        return str(self._ca_file)

    def session(self) -> requests.Session:
        """Return a ``requests.Session`` that trusts this server's certificate.

        ``trust_env`` is turned off because requests lets ``REQUESTS_CA_BUNDLE`` /
        ``CURL_CA_BUNDLE`` override ``Session.verify``.
        """
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca_file
        return session

    def stop(self) -> None:
        """Stop serving and remove the temporary certificate directory."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._own_dir:
            shutil.rmtree(self.cert_dir, ignore_errors=True)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(
    sandbox: SandboxCRM,
    host: str = "127.0.0.1",
    port: int = 8443,
    cert_dir: str | Path | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``sandbox`` over HTTPS in the foreground until interrupted.

    Args:
        sandbox: the state to serve.
        host: interface to bind.
        port: TCP port.
        cert_dir: where cert.pem/key.pem are written (clients trust cert.pem); a temp dir
            when None.
        on_ready: called with the certificate's path once the socket is bound.
    """
    directory = Path(cert_dir) if cert_dir else Path(tempfile.mkdtemp(prefix="sandbox-tls-"))
    context, cert = _ssl_context(directory)
    server = make_server(
        host,
        port,
        _FastClose(create_app(sandbox)),
        threaded=True,
        ssl_context=context,
        request_handler=QuietRequestHandler,
    )
    sandbox.base_url = f"https://{host}:{server.server_port}"
    if on_ready is not None:
        on_ready(str(cert))
    try:
        server.serve_forever()
    finally:
        server.server_close()
