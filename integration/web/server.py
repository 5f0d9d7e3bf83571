"""Serving the web app: gunicorn from `leadlift web` (as the Procfile runs it), or a
thread on loopback for the demo."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.util import import_app
from werkzeug.serving import make_server


class _Gunicorn(BaseApplication):
    def __init__(self, app_uri: str, options: dict[str, object]) -> None:
        self.app_uri = app_uri
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return import_app(self.app_uri)


def serve(app_uri: str, bind: str, workers: int) -> None:
    """Serve the WSGI app ``module:factory()`` named by ``app_uri``."""
    _Gunicorn(app_uri, {"bind": bind, "workers": workers, "accesslog": "-"}).run()


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving_in_thread(app: Flask, port: int) -> Iterator[str]:
    """``app`` on a loopback port in a thread, for the demo and tests (the Procfile
    runs gunicorn); yields its base URL."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
