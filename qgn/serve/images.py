"""A task's image, as ``QGNBackend`` reads it (``TaskImages``): ``/data/local-files/?d=PATH`` and
plain paths inside ``document_root`` (as Label Studio's own ``LOCAL_FILES_DOCUMENT_ROOT``; the path
must stay inside it), other Label Studio addresses (``/data/upload/…``) and http(s) URLs fetched -
the token only to Label Studio's own origin (``qgn.serve.fetch``) - streamed into a temporary file
of at most ``MAX_IMAGE_BYTES``, cut off after ``FETCH_DEADLINE_S`` in all, at most ``MAX_FETCHES``
at once (``FETCH_WAIT_S`` for a slot, then a 503)."""
from __future__ import annotations

import http.client
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import numpy as np

from qgn.shown import echo
from .fetch import HTTPRedirects, TokenHandler, TrackedHTTPHandler, TrackedHTTPSHandler, Watchdog, origin, passing
from .request import NoLabelStudio, PassingFailure, RequestError
from .staging import FETCH_PREFIX, holding

MAX_IMAGE_BYTES = 256 * 1024 * 1024
FETCH_TIMEOUT_S = 30.0  # for each connect and each read of a fetch
FETCH_DEADLINE_S = 120.0  # for the whole of a fetch, redirects included
MAX_FETCHES = 4  # fetches at once (each streams into a temporary file of at most MAX_IMAGE_BYTES)
FETCH_WAIT_S = 30.0  # how long a fetch waits for one of those before a 503
PASSING_HTTP = {401, 403, 408, 425, 429}  # and every 5xx: answers that may change (a token /setup renews, a load)


def is_file(path: Path) -> bool:
    """``path.is_file()``, False too for a name the system refuses (too long: its OSError repeated
    the whole of a client's image reference)."""
    try:
        return path.is_file()
    except OSError:
        return False


class TaskImages:
    """The image-reading half of ``QGNBackend``; it reads the backend's ``document_root``
    (a resolved Path or None), ``hostname`` and ``token`` (under ``state_lock``) and takes a slot of
    ``fetch_slots`` (a semaphore of ``MAX_FETCHES``) for each fetch."""

    def load_image(self, ref: str) -> np.ndarray:
        """(H, W, 3) uint8 of a task's image reference (see the module docstring)."""
        from qgn.data.imageio import read_rgb

        with self.image_file(ref) as path:
            return read_rgb(path)

    @contextmanager
    def image_file(self, ref: str) -> Iterator[Path]:
        """The file of a task's image reference: inside ``document_root``, or fetched into a
        temporary file that lives as long as the block."""
        if "\0" in ref:
            raise RequestError(f"the image {echo(ref, quote=True)} holds a NUL character, which no file name or URL has")
        parsed = urlparse(ref)
        if parsed.path.startswith("/data/local-files") and self.document_root is not None:
            relative = (parse_qs(parsed.query).get("d") or [""])[-1]
            yield self.inside_root(relative.lstrip("/"), ref)
        elif parsed.scheme in ("http", "https") or ref.startswith("/"):
            # containment first, then existence: a path outside the root is a Label Studio address
            # whether or not such a file exists, so the answer says nothing about files out there
            local = self.resolved(ref, ref) if not parsed.scheme and not parsed.netloc and \
                self.document_root is not None else None
            if local is not None and self.document_root in local.parents and is_file(local):
                yield local
            else:
                with self.fetch(ref) as path:
                    yield path
        elif self.document_root is not None:
            yield self.inside_root(ref, ref)
        else:
            raise RequestError(f"cannot open the image {echo(ref, quote=True)}: not a URL, and qgn serve has no --document-root to "
                               "read local files from")

    def inside_root(self, relative: str, ref: str) -> Path:
        if "\0" in relative:
            raise RequestError(f"the image {echo(ref, quote=True)} names a file with a NUL character, which no file name has")
        path = self.resolved(relative, ref)
        if self.document_root not in path.parents:
            raise RequestError(f"the image {echo(ref, quote=True)} lies outside the document root {self.document_root}", 403)
        if not is_file(path):
            raise RequestError(f"the image {echo(ref, quote=True)} is not a file under {self.document_root}", 404)
        return path

    def resolved(self, relative: str, ref: str) -> Path:
        """``document_root / relative`` resolved; a name the system refuses (too long, a loop) is a 400
        naming the reference (``echo``), not the system's message repeating all of it."""
        try:
            return (self.document_root / relative).resolve()
        except (OSError, RuntimeError) as exc:
            raise RequestError(f"the image {echo(ref, quote=True)} names no file qgn serve can open: "
                               f"{getattr(exc, 'strerror', None) or 'a symbolic link loop'}") from None

    @contextmanager
    def fetch(self, ref: str) -> Iterator[Path]:
        """The image at ``ref`` fetched into a temporary file (see ``FETCH_DEADLINE_S``,
        ``MAX_FETCHES``), which lives as long as the block; the block holds a fetch slot."""
        with self.state_lock:
            hostname, token = self.hostname, self.token
        url = ref if urlparse(ref).scheme else (urljoin(hostname + "/", ref.lstrip("/")) if hostname else None)
        if url is None:
            raise NoLabelStudio(f"the image {echo(ref, quote=True)} is a Label Studio address, but no Label Studio URL is known: "
                                "connect through /setup or start qgn serve with --label-studio-url", 422)
        if not self.fetch_slots.acquire(timeout=FETCH_WAIT_S):
            raise PassingFailure(f"qgn serve is busy: {MAX_FETCHES} images are being fetched; try again later", 503)
        try:
            with tempfile.TemporaryDirectory(prefix=FETCH_PREFIX) as folder, holding(folder):
                path = Path(folder) / ("image" + Path(urlparse(url).path).suffix[:12])
                self.download(url, path, hostname, token)
                yield path
        finally:
            self.fetch_slots.release()

    @staticmethod
    def download(url: str, path: Path, hostname: str | None, token: str | None) -> None:
        """``url`` into ``path``, streamed, at most ``MAX_IMAGE_BYTES``; every connection it opens
        (redirects too) is shut when ``FETCH_DEADLINE_S`` has passed, whatever the host sends."""
        authorization = (("Bearer " if token.count(".") == 2 else "Token ") + token) if token and hostname else None
        watchdog = Watchdog()
        opener = urllib.request.build_opener(TokenHandler(origin(hostname) if hostname else None, authorization),
                                             TrackedHTTPHandler(watchdog), TrackedHTTPSHandler(watchdog), HTTPRedirects())
        timer = threading.Timer(FETCH_DEADLINE_S, watchdog.expire)
        timer.daemon = True
        timer.start()
        size = 0
        try:
            with opener.open(urllib.request.Request(url, headers={"User-Agent": "qgn-serve"}),
                             timeout=FETCH_TIMEOUT_S) as response, path.open("wb") as out:
                while chunk := response.read1(1 << 16):
                    size += len(chunk)
                    if size > MAX_IMAGE_BYTES:
                        raise RequestError(f"the image {echo(url)} is larger than {MAX_IMAGE_BYTES >> 20} MiB", 413)
                    out.write(chunk)
        except urllib.error.HTTPError as exc:
            if not watchdog.expired:
                may_pass = exc.code in PASSING_HTTP or exc.code >= 500
                raise (PassingFailure if may_pass else RequestError)(
                    f"fetching the image {echo(url)} got HTTP {exc.code} {exc.reason}", 424) from None
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, OSError) as exc:
            if not watchdog.expired:
                raise (PassingFailure if passing(exc) else RequestError)(
                    f"fetching the image {echo(url)} failed: {getattr(exc, 'reason', exc)}", 424) from None
        finally:
            timer.cancel()
        if watchdog.expired:
            raise PassingFailure(f"fetching the image {echo(url)} took longer than {FETCH_DEADLINE_S:g} s", 504)
