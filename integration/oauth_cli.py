"""Browser OAuth from the command line: a one-shot loopback receiver for the callback.

`leadlift connect salesforce --oauth` sends the admin's browser to the CRM's
authorize page with PKCE and a random state, receives the redirect on
``http://localhost:<port>/callback``, checks the state and hands the code
back for the token exchange. The web app's connect flow serves hosted installs.
"""

from __future__ import annotations

import secrets
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

from integration.errors import AuthError

CALLBACK_PATH = "/callback"
PAGE = (
    "<html><body style='font-family:sans-serif'><h2>{title}</h2><p>{text}</p>"
    "<p>You can close this tab.</p></body></html>"
)


@dataclass
class _Result:
    code: str | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


class LoopbackReceiver:
    """Listens on localhost for exactly one OAuth redirect carrying our state."""

    def __init__(self, port: int = 0) -> None:
        self.state = secrets.token_urlsafe(24)
        self._result = _Result()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query)
                if urlparse(self.path).path != CALLBACK_PATH:
                    self.send_error(404)
                    return
                title, text = receiver._accept(query)
                body = PAGE.format(title=title, text=text).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return None

        self._server = HTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def redirect_uri(self) -> str:
        return f"http://localhost:{self._server.server_port}{CALLBACK_PATH}"

    def _accept(self, query: dict[str, list[str]]) -> tuple[str, str]:
        if query.get("state") != [self.state]:
            # Not ours (or forged): ignore it and keep waiting for the real redirect.
            return "Unexpected request", "The state did not match this sign-in."
        if "error" in query:
            self._result.error = " ".join(query.get("error_description") or query["error"])
        else:
            self._result.code = (query.get("code") or [None])[0]
        self._result.done.set()
        if self._result.error:
            return "Not connected", self._result.error
        return "leadlift is connected", "Return to your terminal."

    def __enter__(self) -> LoopbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait(self, timeout: float) -> str:
        if not self._result.done.wait(timeout):
            raise AuthError(f"no OAuth callback within {timeout:.0f} s: connection not made")
        if self._result.error or not self._result.code:
            raise AuthError(f"the CRM did not grant access: {self._result.error or 'no code'}")
        return self._result.code


def browser_login(
    authorize_url: Callable[[str, str], str],
    open_browser: Callable[[str], object] = webbrowser.open,
    announce: Callable[[str], None] = print,
    port: int = 0,
    timeout: float = 300.0,
) -> tuple[str, str]:
    """Run the browser leg; returns (code, redirect_uri) for the token exchange.

    Args:
        authorize_url: builds the CRM's authorize URL from (redirect_uri, state).
        open_browser: opens a URL (the tests pass an HTTP client that follows redirects).
    """
    with LoopbackReceiver(port) as receiver:
        url = authorize_url(receiver.redirect_uri, receiver.state)
        announce(url)
        open_browser(url)
        return receiver.wait(timeout), receiver.redirect_uri
