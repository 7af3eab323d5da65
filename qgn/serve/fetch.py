"""Fetching an image over HTTP(S) (``qgn.serve.images.TaskImages.download``): the token only to Label Studio's own
origin (``origin``, ``TokenHandler``), redirects only to http and https (``HTTPRedirects``), every
socket of a fetch shut when its deadline passes (``Watchdog``, ``tracked``, ``Tracked*Handler``), and
whether a connection failure may pass by itself (``passing``)."""
from __future__ import annotations

import http.client
import socket
import threading
import urllib.error
import urllib.request
from urllib.parse import urlparse


def passing(exc: BaseException) -> bool:
    """Whether a fetch's connection failure ``exc`` (urllib's URLError, an OSError) may pass by
    itself: not a host name that does not resolve (but for a resolver's "try again") nor a
    certificate that does not verify — those need a person to fix the URL or the certificate."""
    import ssl

    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return False
    if isinstance(reason, socket.gaierror):
        return reason.errno == socket.EAI_AGAIN
    return True


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of ``url``, the default port filled in: what a browser calls its origin."""
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    try:
        port = parsed.port
    except ValueError:
        port = None
    return scheme, (parsed.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


class TokenHandler(urllib.request.BaseHandler):
    """Adds ``Authorization`` to a request only when it goes to ``studio`` (Label Studio's origin),
    redirects included: the header is unredirected, so urllib never copies it to the next hop, and
    each hop gets it again only if it is Label Studio's own (as browsers and ``requests`` strip it)."""

    def __init__(self, studio: tuple | None, authorization: str | None):
        self.studio, self.authorization = studio, authorization

    def http_request(self, request):
        request.remove_header("Authorization")
        if self.authorization and self.studio is not None and origin(request.full_url) == self.studio:
            request.add_unredirected_header("Authorization", self.authorization)
        return request

    https_request = http_request


class HTTPRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to http or https: urllib's own goes to ftp:// too, where neither a
    fetch's deadline (``Watchdog``) nor anything else of qgn serve watches the connection."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urlparse(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"{msg}, a redirect to {scheme}:// (only http and https are "
                                                        "followed)", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Watchdog:
    """The sockets of one fetch, shut all at once when its time is up (``expire``)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sockets: list = []
        self.expired = False

    def track(self, sock) -> None:
        with self.lock:
            self.sockets.append(sock)
            expired = self.expired
        if expired:
            self.shut(sock)

    def expire(self) -> None:
        with self.lock:
            self.expired = True
            sockets = list(self.sockets)
        for sock in sockets:
            self.shut(sock)

    @staticmethod
    def shut(sock) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # a blocked read returns at once
        except OSError:
            pass


def tracked(connection_class, watchdog: Watchdog):
    """``connection_class`` whose sockets ``watchdog`` knows."""

    class Tracked(connection_class):
        def connect(self):
            super().connect()
            watchdog.track(self.sock)

    return Tracked


class TrackedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, watchdog: Watchdog):
        super().__init__()
        self.watchdog = watchdog

    def http_open(self, request):
        return self.do_open(tracked(http.client.HTTPConnection, self.watchdog), request)


class TrackedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, watchdog: Watchdog):
        super().__init__()
        self.watchdog = watchdog

    def https_open(self, request):
        return self.do_open(tracked(http.client.HTTPSConnection, self.watchdog), request, context=self._context)
