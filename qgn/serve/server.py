"""The HTTP side of ``qgn serve``: a threaded stdlib server speaking Label Studio's ML-backend
protocol (see ``qgn.serve``) over ``qgn.serve.backend.QGNBackend``.

Every request has its own thread, so a slow prediction never holds up ``/health`` (inference takes
the backend's lock; health does not). Bad requests get a 4xx with ``{"error": reason}``; an
unexpected failure a 500 with its one-line reason (the traceback goes to the server's log only).

Limits: each read from a client waits at most ``Handler.timeout`` seconds (an idle or stalled
connection is closed), a request's line, headers and body arrive within ``request_deadline_s`` of
its first byte and its answer leaves within as long again (``QGN_SERVE_REQUEST_DEADLINE``: a client
sending or reading a byte now and then is cut off, with a 408 when it sends); at most
``QGNServer.max_connections`` connections are served at once — one beyond gets a 503 and is closed —
and ``QGNServer.request_queue_size`` wait to be accepted; the bodies received at once come to at
most ``QGNServer.max_body_bytes_at_once`` bytes as they arrive (each is spooled to a temporary file;
a Content-Length reserves nothing), a body beyond gets a 503 (Retry-After) and the connection closes.
The body of a request that takes none (a GET, an unknown endpoint) is received and counted the same
way up to ``DRAIN_BYTES``; a larger one is not read, and the connection closes after the answer,
lingering (``linger``) so that a client still sending reads the answer, not a reset. An
answer or log line repeats at most a bounded, escaped part of what a client sent (``qgn.shown``).
"""
from __future__ import annotations

import json
import select
import socket
import sys
import tempfile
import threading
import time
import traceback
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .backend import QGNBackend
from .request import RequestError
from .body import NotJSON, ValueTooLarge, read_body
from qgn.shown import bounded, echo
from .label_config import ConfigError
from .limits import REQUEST_DEADLINE_ENV, request_deadline_s

MAX_BODY_BYTES = 64 * 1024 * 1024  # a body, and for /predict the largest value in it and the tasks kept
MAX_PREDICT_BODY_BYTES = 1024 * 1024 * 1024  # Label Studio sends each task's annotations and predictions
DRAIN_BYTES = 64 * 1024  # the most of an unwanted body (a GET's) read to keep its connection open
LINGER_BYTES = MAX_BODY_BYTES  # after the answer, the most of a client's unread bytes dropped before closing
LINGER_S = 10.0  # … for at most this long in all,
LINGER_IDLE_S = 2.0  # … and this long without a byte
SPOOL_BYTES = 8 * 1024 * 1024  # a body beyond waits in a temporary file until it is parsed
TASK_FIELDS = ("id", "data")  # what /predict reads of a task (Label Studio sends its annotations, predictions…)
POST_ROUTES = {"/setup": "setup", "/predict": "predict", "/webhook": "webhook"}


def endpoint(target: str) -> str:
    """The endpoint a request's target names: its path before any query, %-escapes decoded
    (``/%68ealth`` is /health: RFC 3986 §6.2.2.2), without a trailing slash (``/`` itself kept).
    RequestError (400, with the reason) where the path's bytes, escapes decoded, are no UTF-8
    (``/%ff%fe``, or such bytes sent raw: http.server hands them over as Latin-1): no path names
    anything then, and a 404 "no such endpoint" would say the path was understood."""
    from urllib.parse import unquote_to_bytes

    path = target.split("?")[0]
    try:
        decoded = unquote_to_bytes(path.encode("latin-1", "replace")).decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError(f"the path {echo(path)} is not UTF-8 once its %-escapes are decoded, so it names "
                           "nothing; send the endpoint's path as it is written (try /health)") from None
    return decoded.rstrip("/") or "/"


class Discard:
    """Where ``Handler.drain`` receives a body that is dropped."""

    def write(self, data: bytes) -> None:
        pass


class Deadline:
    """Shuts ``how`` of ``sock`` when ``seconds`` have passed (unless cancelled first): a read or
    write blocked on it returns at once, however the client paces its bytes."""

    def __init__(self, sock, seconds: float, how: int = socket.SHUT_RD):
        self.sock, self.how, self.expired = sock, how, False
        self.timer = threading.Timer(seconds, self.expire)
        self.timer.daemon = True
        self.timer.start()

    def expire(self) -> None:
        self.expired = True
        try:
            self.sock.shutdown(self.how)
        except OSError:
            pass

    def cancel(self) -> None:
        self.timer.cancel()


class Handler(BaseHTTPRequestHandler):
    server_version = "qgn-serve"
    protocol_version = "HTTP/1.1"
    backend: QGNBackend  # set by make_server
    quiet = False
    timeout = 60.0  # seconds a read from the client may wait (socketserver sets it on the socket)
    request_deadline_s = 120.0  # set by make_server (QGN_SERVE_REQUEST_DEADLINE)
    deadline: Deadline | None = None
    arrived = 0.0  # time.monotonic() of the request's first byte

    def handle_one_request(self):
        """http.server's, with the request's deadline running from its first byte (the wait for
        it, on a kept-alive connection, is bounded by ``timeout``)."""
        try:
            if not self.rfile.peek(1):
                self.close_connection = True
                return
        except TimeoutError as exc:
            self.log_error("Request timed out: %r", exc)
            self.close_connection = True
            return
        self.arrived = time.monotonic()  # Label Studio's wait for the answer runs from about now
        self.deadline = Deadline(self.connection, self.request_deadline_s)
        try:
            super().handle_one_request()
        finally:
            self.deadline.cancel()

    def parse_request(self) -> bool:
        ok = super().parse_request()
        if ok and self.late():  # the headers were cut off by the deadline, not ended by the client
            self.send_error(408)
            return False
        return ok

    def late(self) -> bool:
        """Whether the request's deadline cut it off; if so the connection closes after the answer."""
        if self.deadline is not None and self.deadline.expired:
            self.close_connection = True
            return True
        return False

    def late_reason(self) -> str:
        return (f"the request did not arrive within {self.request_deadline_s:g} s; send it at once, or raise "
                f"{REQUEST_DEADLINE_ENV} on the server")

    def do_GET(self):  # http.server's naming
        self.drain()  # a body sent with a GET is read, never parsed as the next request
        if self.late():
            return self.answer(408, {"error": self.late_reason()})
        try:
            path = endpoint(self.path)
        except RequestError as exc:
            return self.answer(exc.status, {"error": str(exc)})
        if path in ("/", "/health"):
            self.answer(200, self.backend.health())
        elif path == "/metrics":
            self.answer(200, {})
        elif path == "/versions":
            self.answer(200, self.backend.model_versions())
        else:
            self.answer(404, {"error": f"no such endpoint GET {echo(self.path.split('?')[0])}; try /health"})

    def do_POST(self):
        try:
            path = endpoint(self.path)
        except RequestError as exc:
            path, refused = None, exc
        method = POST_ROUTES.get(path)
        if method is None:
            self.drain()
            if self.late():
                return self.answer(408, {"error": self.late_reason()})
            if path is None:
                return self.answer(refused.status, {"error": str(refused)})
            return self.answer(404, {"error": f"no such endpoint POST {echo(self.path.split('?')[0])}; this backend serves "
                                              f"{', '.join(POST_ROUTES)}"})
        try:
            body = self.read_json("tasks" if method == "predict" else None)
            # a batch stops when nobody waits for it; a webhook is answered within Label Studio's wait
            extra = {"predict": (self.client_gone,), "webhook": (self.arrived,)}.get(method, ())
            self.answer(200 if method != "webhook" else 201, getattr(self.backend, method)(body, *extra))
        except RequestError as exc:
            self.answer(exc.status, {"error": str(exc)})
        except ConfigError as exc:
            self.answer(400, {"error": str(exc)})
        except (ValueError, OSError) as exc:
            self.answer(422, {"error": str(exc)})
        except Exception as exc:  # never a traceback to the client
            traceback.print_exc(file=sys.stderr)
            self.answer(500, {"error": f"internal error: {type(exc).__name__}: {exc}"})

    def read_json(self, list_key: str | None = None) -> dict:
        """The request's JSON object; of ``list_key``'s list only the items the backend may use
        (``qgn.serve.body``), so memory follows what the request asks, not how many items it holds."""
        if self.headers.get("Transfer-Encoding"):  # which framing holds? (RFC 9112 §6.1: close after answering)
            self.close_connection = True
            raise RequestError("the request's body comes with Transfer-Encoding; qgn serve reads a body framed by "
                               "Content-Length alone: send it with one", 411)
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            self.close_connection = True
            raise RequestError("the request needs a Content-Length and a JSON body", 411)
        length = lengths[0].strip()
        if len({v.strip() for v in lengths}) > 1:  # which one frames the body? (request smuggling)
            self.close_connection = True
            raise RequestError(f"the request has {len(lengths)} different Content-Length headers; send one")
        if not (length.isascii() and length.isdigit()):  # int() would take '-1', '1_2', ' 12 '
            self.close_connection = True
            raise RequestError(f"Content-Length {echo(length, quote=True)} is not a byte count")
        size = int(length)
        limit = MAX_PREDICT_BODY_BYTES if list_key else MAX_BODY_BYTES
        if size > limit:
            self.close_connection = True
            raise RequestError(f"the body is {size} bytes; at most {limit} are read", 413)
        if not self.server.room_for(size):  # the bodies in flight, as received, leave no room for it: unread
            raise self.busy(size)
        with self.body_bytes_held() as held, tempfile.SpooledTemporaryFile(SPOOL_BYTES,
                                                                          prefix="qgn-serve-body-") as spool:
            got = self.receive(size, spool, held)
            if self.late():
                raise RequestError(self.late_reason(), 408)
            if self.deadline is not None:
                self.deadline.cancel()  # what follows is the backend's time, not the client's
            if got < size:
                self.close_connection = True
                raise RequestError(f"the body ended after {got} of {size} bytes")
            spool.seek(0)
            try:
                body = read_body(spool.read, list_key, self.backend.max_tasks, TASK_FIELDS, MAX_BODY_BYTES,
                                 MAX_BODY_BYTES)
            except ValueTooLarge as exc:
                raise RequestError(f"the body holds {exc}; at most {MAX_BODY_BYTES} are read at once", 413) from None
            except (UnicodeDecodeError, NotJSON, RecursionError) as exc:
                raise RequestError(f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise RequestError(f"the body must be a JSON object, not a {body}")
        return body

    @contextmanager
    def body_bytes_held(self):
        """A list whose one number is the bytes of this body charged to the server's
        ``max_body_bytes_at_once`` as they arrive (``receive``), given back on every way out."""
        held = [0]
        try:
            yield held
        finally:
            self.server.release(held[0])

    def busy(self, size: int) -> RequestError:
        """The 503 (Retry-After, the connection closed) for a body the bytes in flight leave no room for."""
        self.close_connection = True
        return RequestError(f"qgn serve is busy: the bodies it is receiving and this one's {size} bytes are more "
                            f"than {self.server.max_body_bytes_at_once} bytes; try again later", 503)

    def receive(self, size: int, out, held: list[int]) -> int:
        """Up to ``size`` bytes of the body into ``out`` as fast as they come (Label Studio must
        send all of it within its 1 s connect timeout: urllib3 sends a body under that timeout,
        and ``sendall``'s is for the whole), so parsing never paces the client; the bytes got.
        Each chunk is charged to ``max_body_bytes_at_once`` when it has arrived (``held[0]``): a
        Content-Length alone reserves nothing, so blocking other bodies costs really sending them."""
        got = 0
        try:
            while got < size and (data := self.rfile.read1(min(1 << 20, size - got))):
                if not self.server.reserve(len(data)):
                    raise self.busy(size)
                held[0] += len(data)
                out.write(data)
                got += len(data)
        except TimeoutError:
            self.close_connection = True
            raise RequestError(f"the body did not arrive: no byte for {self.timeout:g} s", 408) from None
        return got

    def client_gone(self) -> bool:
        """Whether the client has closed its side of the connection (a read would return end of
        file now): Label Studio does when it stops waiting for an answer."""
        try:
            poller = select.poll()  # not select(): no limit on the descriptor's number
            poller.register(self.connection, select.POLLIN)
            return bool(poller.poll(0)) and not self.connection.recv(1, socket.MSG_PEEK)
        except (OSError, ValueError):  # reset, or closed here
            return True

    def drain(self) -> None:
        """Read and drop the body of a request that takes none (a GET, an unknown endpoint), so the
        connection can serve the next request: at most ``DRAIN_BYTES``, charged as every body is to
        ``max_body_bytes_at_once`` (``receive``). A larger body, one that cannot be read or has no
        room is not read: the connection closes after the answer (a GET's 64 MiB bodies were read
        and dropped beside the bodies the server counted)."""
        length = self.headers.get("Content-Length") or "0"
        size = int(length) if length.isascii() and length.isdigit() else -1
        if not size:
            self.close_connection = self.close_connection or bool(self.headers.get("Transfer-Encoding"))
            return
        if self.headers.get("Transfer-Encoding") or not 0 < size <= DRAIN_BYTES or not self.server.room_for(size):
            self.close_connection = True
            return
        with self.body_bytes_held() as held:
            try:
                if self.receive(size, Discard(), held) == size:
                    return
            except RequestError:
                pass
        self.close_connection = True

    def answer(self, status: int, payload: dict, body: bool = True) -> None:
        """``payload`` as JSON with ``status``; its ``error`` at most ``qgn.shown.MESSAGE_CHARS`` characters
        (``bounded``: whatever of a client's text it holds)."""
        if isinstance(payload.get("error"), str):
            payload = {**payload, "error": bounded(payload["error"])}
        data = json.dumps(payload).encode("utf-8")
        deadline = Deadline(self.connection, self.request_deadline_s, socket.SHUT_RDWR)  # a client reading slowly
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            if status == 503:  # busy, as the connection-slot refusal says
                self.send_header("Retry-After", "1")
            self.end_headers()
            if body:
                self.wfile.write(data)
        except (ConnectionError, TimeoutError) as exc:  # the client left: one line, no traceback
            self.close_connection = True
            if deadline.expired:
                self.log_message("the client did not take its %d answer within %g s", status, self.request_deadline_s)
            else:
                self.log_message("the client left before its %d answer was sent (%s)", status, type(exc).__name__)
        finally:
            deadline.cancel()

    def send_error(self, code, message=None, explain=None):  # http.server's: its errors as JSON too
        """What http.server answers itself (bad request line, unknown method, headers too large) as
        ``{"error": reason}``, and the connection closed."""
        short = self.responses.get(code, ("error",))[0]
        if self.late():  # a request line or headers cut off by the deadline: that is the reason
            code, short, message, explain = 408, self.late_reason(), None, None
        self.log_error("code %d, message %s", code, message or short)
        self.close_connection = True
        if getattr(self, "request_version", "HTTP/0.9") in ("HTTP/0.9", ""):  # a request line it could not read:
            self.request_version = "HTTP/1.0"  # still a status line and headers, not a bare body
        self.answer(code, {"error": f"{message or short}" + (f": {explain}" if explain else "")},
                    body=self.command != "HEAD")

    def log_message(self, format, *args):  # http.server's signature
        """One line of the log, at most ``qgn.shown.MESSAGE_CHARS`` characters with control characters
        escaped (a request line is the client's text: http.server's own escaping is replaced here)."""
        if not self.quiet:
            sys.stderr.write(f"qgn serve: {self.address_string()} {bounded(format % args)}\n")


class QGNServer(ThreadingHTTPServer):
    """One thread per connection, at most ``max_connections`` of them: a connection beyond gets a
    503 with a JSON reason at once and is closed, so slow or idle clients cannot take every thread
    and file descriptor."""

    daemon_threads = True
    request_queue_size = 128  # the listen backlog (socketserver's default is 5)
    max_connections = 64
    max_body_bytes_at_once = 4 * MAX_PREDICT_BODY_BYTES  # bodies being received, in all (spooled to disk)

    def __init__(self, *args, **kwargs):
        self.slots = threading.BoundedSemaphore(self.max_connections)
        self.body_lock = threading.Lock()
        self.body_bytes = 0  # of the bodies being received now
        super().__init__(*args, **kwargs)

    def room_for(self, size: int) -> bool:
        """Whether ``size`` more bytes fit beside the bytes of bodies received so far."""
        with self.body_lock:
            return self.body_bytes + size <= self.max_body_bytes_at_once

    def reserve(self, size: int) -> bool:
        """Takes ``size`` bytes of ``max_body_bytes_at_once`` for bytes of a body just received (False
        when they are not free: 64 connections each sending a 1 GiB /predict body held 64 GiB of
        temporary files); ``release`` gives them back."""
        with self.body_lock:
            if self.body_bytes + size > self.max_body_bytes_at_once:
                return False
            self.body_bytes += size
            return True

    def release(self, size: int) -> None:
        with self.body_lock:
            self.body_bytes -= size

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            self.refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        """socketserver's, with ``linger`` before the close: here on the request's own thread (the
        accepting thread also closes connections it could not hand to one, and must not wait)."""
        try:
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                linger(request)
                self.shutdown_request(request)
        finally:
            self.slots.release()

    def handle_error(self, request, client_address):
        """A client that went away is one line in the log; anything else its traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            sys.stderr.write(f"qgn serve: {client_address[0]} left: {type(exc).__name__}\n")
        else:
            super().handle_error(request, client_address)

    def refuse(self, request) -> None:
        """503 and close, on the accepting thread without waiting on the client."""
        data = json.dumps({"error": f"qgn serve is busy: {self.max_connections} connections are open; "
                                    "try again later"}).encode("utf-8")
        head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n").encode("ascii")
        try:
            request.setblocking(False)
            request.send(head + data)
            request.shutdown(socket.SHUT_WR)
            while request.recv(65536):  # what the client already sent, so closing does not reset
                pass
        except OSError:
            pass
        finally:
            self.shutdown_request(request)  # no lingering: this is the accepting thread


def linger(sock: socket.socket) -> None:
    """Shut the sending side of ``sock`` (its answer is sent: the client reads it to its end), then
    read and drop what the client still sends - an unwanted body not read, such as the 8 MB
    POST /train of older Label Studio versions - until it closes, up to ``LINGER_BYTES`` and
    ``LINGER_S`` (``LINGER_IDLE_S`` without a byte). Closing a socket with bytes unread resets the
    connection, and the client, still sending, saw a broken pipe instead of the answer."""
    end = time.monotonic() + LINGER_S
    left = LINGER_BYTES
    try:
        sock.shutdown(socket.SHUT_WR)
        while left > 0 and (wait := end - time.monotonic()) > 0:
            sock.settimeout(min(wait, LINGER_IDLE_S))
            data = sock.recv(min(left, 1 << 16))
            if not data:
                return
            left -= len(data)
    except OSError:  # the client left, or went quiet (a timeout): closing can do no harm
        pass


def make_server(backend: QGNBackend, host: str = "127.0.0.1", port: int = 9090, quiet: bool = False) -> QGNServer:
    """A server bound to ``host:port`` (port 0: any free one; ``server.server_address`` says which)."""
    handler = type("QGNHandler", (Handler,), {"backend": backend, "quiet": quiet,
                                              "request_deadline_s": request_deadline_s()})
    return QGNServer((host, port), handler)
