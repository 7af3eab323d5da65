"""`qgn serve` against hostile or careless clients and image hosts: the Label Studio token only
ever reaches Label Studio's origin, connections and fetches are bounded, webhooks of the wrong shape
or claiming huge sizes are refused before anything is allocated, and errors are JSON."""
from __future__ import annotations

import io
import json
import os
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from qgn.formats import labelstudio
from qgn.formats.labelstudio import encode_ls_rle
from qgn.resources import bundled_model_path, samples_dir
from qgn.serve import images as images_module
from qgn.serve import inorder
from qgn.serve.backend import QGNBackend
from qgn.serve.request import RequestError
from qgn.serve.label_config import BrushTarget, ConfigError, brush_target
from qgn.serve.server import Handler, QGNServer, make_server

PNG_SIZE = (64, 48)


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", PNG_SIZE, (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


class FakeHost:
    """An image host on loopback that records each request's path and Authorization header.

    /png: a 64×48 PNG; /redir?to=URL: a 302 to URL; /trickle, /trickle-head: the PNG with its body
    or its headers sent one byte per 50 ms; /hold: waits for ``release`` before answering the PNG."""

    def __init__(self, host: str = "127.0.0.1"):
        self.requests: list[tuple[str, str | None]] = []
        self.seen = threading.Event()
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.requests.append((self.path, self.headers.get("Authorization")))
                fake.seen.set()
                if self.path.startswith("/redir"):
                    self.send_response(302)
                    self.send_header("Location", self.path.split("to=", 1)[1])
                    self.end_headers()
                    return
                if self.path.startswith("/hold"):
                    fake.release.wait(60)
                data = png_bytes()
                try:
                    if self.path.startswith("/trickle-head"):  # the headers, one byte at a time
                        self.trickle(b"HTTP/1.0 200 OK\r\nX-Slow: " + b"x" * 100 + b"\r\n\r\n")
                        self.wfile.write(data)
                        return
                    self.send_response(200)
                    self.send_header("Content-Type", "image/png")
                    self.end_headers()
                    if self.path.startswith("/trickle"):  # the body, one byte at a time
                        self.trickle(data)
                    else:
                        self.wfile.write(data)
                except OSError:
                    pass

            def trickle(self, data):
                for byte in data:
                    if fake.release.wait(0.05):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def webhooks_answer_their_result(monkeypatch):
    """A webhook here is read well within Label Studio's 1 s on an idle machine; on a loaded one its
    answer must still be its result, not "accepted" (qgn.serve.inorder)."""
    monkeypatch.setattr(inorder, "WAIT_S", 60.0)


@pytest.fixture
def hosts():
    made = []

    def make(host="127.0.0.1"):
        made.append(FakeHost(host))
        return made[-1]

    yield make
    for host in made:
        host.close()


@pytest.fixture(scope="module")
def demo_model():
    return bundled_model_path("demo")


@pytest.fixture
def serve(demo_model):
    """start(**backend options) → (port, backend) of a running ``qgn serve``; stopped after the test."""
    started = []

    def start(quiet=True, **options):
        backend = QGNBackend(demo_model, "cpu", **options)
        httpd = make_server(backend, "127.0.0.1", 0, quiet=quiet)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
        return httpd.server_address[1], backend

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def talk(port: int, data: bytes = b"", timeout: float = 30.0) -> bytes:
    """What the server sends back on one connection after ``data``, until it closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_all(sock)


def post(port: int, path: str, body) -> tuple[int, dict]:
    data = json.dumps(body).encode()
    (answer,) = responses(talk(port, b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                                 % (path.encode(), len(data), data)))
    return answer


def read_all(sock) -> bytes:
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def responses(raw: bytes) -> list[tuple[int, dict]]:
    """(status, JSON body) of each HTTP response in ``raw``."""
    found = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(int(v) for k, _, v in (line.partition(":") for line in lines[1:]) if k.lower() == "content-length")
        found.append((int(lines[0].split()[1]), json.loads(rest[:length])))
        raw = rest[length:]
    return found


def test_setup_does_not_move_an_explicit_label_studio_url(hosts, demo_model):
    studio, other = hosts(), hosts()
    backend = QGNBackend(demo_model, "cpu", token="SECRET", label_studio_url=studio.url)
    backend.setup({"hostname": other.url, "access_token": "ignored"})
    assert backend.hostname == studio.url
    assert backend.load_image("/data/upload/1/png.png").shape == (PNG_SIZE[1], PNG_SIZE[0], 3)
    assert studio.requests == [("/data/upload/1/png.png", "Token SECRET")]
    assert other.requests == []


def test_the_token_goes_to_label_studios_origin_only(hosts, demo_model):
    """Not to an image URL on another host or port, not across a redirect that leaves Label Studio,
    and not to the same host by another name (localhost is not 127.0.0.1 to an origin check)."""
    studio, other, renamed = hosts(), hosts(), hosts("localhost")
    backend = QGNBackend(demo_model, "cpu", token="SECRET", label_studio_url=studio.url)
    for ref in (f"{other.url}/png", f"{studio.url}/redir?to={other.url}/png",
                f"{studio.url}/redir?to={renamed.url}/png", f"{other.url}/redir?to={studio.url}/png",
                f"{studio.url}/redir?to={studio.url}/png", "/data/upload/2/png.png"):
        assert backend.load_image(ref).shape == (PNG_SIZE[1], PNG_SIZE[0], 3), ref
    assert {auth for _, auth in other.requests + renamed.requests} == {None}
    assert len(other.requests) == 3 and len(renamed.requests) == 1
    # Label Studio's own addresses get it, also when a redirect comes back to Label Studio
    assert [auth for _, auth in studio.requests] == ["Token SECRET"] * 6


def test_a_stalled_or_idle_connection_is_closed(serve, monkeypatch):
    monkeypatch.setattr(Handler, "timeout", 0.2)
    port, _ = serve()
    stalled = talk(port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    assert responses(stalled) == [(408, {"error": "the body did not arrive: no byte for 0.2 s"})]
    assert talk(port) == b""  # connected, sent nothing: closed without an answer
    assert talk(port, b"GET /health HTTP/1.1\r\nHost: x\r\n") == b""  # headers never finished


def test_connections_beyond_the_limit_get_503_and_the_rest_are_served(serve, monkeypatch):
    monkeypatch.setattr(QGNServer, "max_connections", 2)
    port, _ = serve()
    holders = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(2)]
    try:
        for sock in holders:
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        (status, answer), = responses(talk(port))
        assert status == 503 and "busy" in answer["error"]
    finally:
        for sock in holders:
            sock.close()
    for _ in range(200):  # the holders' threads end once they see the close; then a slot is free
        if responses(talk(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))[0][0] == 200:
            break
    else:
        pytest.fail("no slot came free after the held connections closed")


def test_the_listen_backlog_holds_a_burst_of_connections(demo_model):
    httpd = make_server(QGNBackend(demo_model, "cpu"), "127.0.0.1", 0, quiet=True)  # listening, not accepting
    try:
        burst = [socket.create_connection(("127.0.0.1", httpd.server_address[1]), timeout=2) for _ in range(100)]
        for sock in burst:
            sock.close()
    finally:
        httpd.server_close()


def test_the_body_of_a_get_is_not_read_as_the_next_request(serve):
    port, _ = serve()
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = talk(port, b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
               b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (len(smuggled), smuggled))
    assert [status for status, _ in responses(raw)] == [200, 200]


@pytest.mark.parametrize("request_line", [b"POST /train", b"GET /health"])
def test_a_client_still_sending_an_unwanted_large_body_reads_the_answer(serve, request_line):
    """Older Label Studio versions POST /train with an 8 MB body: the answer is sent unread, and
    closing with the body's bytes unread reset the connection - the client saw a broken pipe."""
    port, _ = serve()
    body = b"{" + b" " * (8_000_000 - 2) + b"}"
    raw = talk(port, b"%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
               % (request_line, len(body), body))
    assert [status for status, _ in responses(raw)] == [404 if request_line.startswith(b"POST") else 200]



def test_only_a_requests_own_thread_lingers_never_the_accepting_one(serve, monkeypatch):
    """The accepting thread closes a connection it could not hand to a thread (none could be
    started): lingering there held every new connection up to 10 s behind a slow client."""
    import qgn.serve.server as server_module

    lingered = []
    real = server_module.linger
    monkeypatch.setattr(server_module, "linger", lambda sock: lingered.append(threading.current_thread()) or real(sock))
    port, _ = serve()
    assert [status for status, _ in responses(talk(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))] == [200]
    assert len(lingered) == 1 and lingered[0] is not threading.main_thread()
    httpd = make_server(QGNBackend.__new__(QGNBackend), "127.0.0.1", 0)
    try:
        a, b = socket.socketpair()
        with b:
            httpd.shutdown_request(a)  # as socketserver does on the accepting thread when a thread fails to start
        assert len(lingered) == 1
    finally:
        httpd.server_close()


HOOK_CONFIG = ('<View><Image name="image" value="$image"/><BrushLabels name="tag" toName="image">'
               '<Label value="road"/><Label value="sky"/></BrushLabels></View>')


def webhook(width=384, height=256, image="images/scene_01.png"):
    """An ANNOTATION_CREATED of one rectangle claiming ``width``×``height`` (scene_01 is 384×256)."""
    region = {"from_name": "tag", "to_name": "image", "type": "rectanglelabels", "original_width": width,
              "original_height": height, "value": {"x": 0, "y": 0, "width": 50, "height": 50,
                                                   "rectanglelabels": ["road"]}}
    return {"action": "ANNOTATION_CREATED", "project": {"id": 7, "label_config": HOOK_CONFIG},
            "task": {"id": 1, "data": {"image": image}}, "annotation": {"id": 9, "result": [region]}}


def test_a_webhook_claiming_a_size_not_its_images_allocates_nothing(serve, tmp_path, monkeypatch):
    port, backend = serve(document_root=samples_dir(), train_out=tmp_path)
    painted = []
    original = labelstudio.annotation_label
    monkeypatch.setattr(labelstudio, "annotation_label", lambda *a, **k: painted.append(1) or original(*a, **k))
    status, answer = post(port, "/webhook", webhook(8192, 8192))
    assert status == 422 and "claims 8192×8192 pixels" in answer["error"] and "384×256" in answer["error"]
    assert painted == [] and not backend.corrections  # refused from the header, before any label map
    assert post(port, "/webhook", webhook())[1]["status"] == "kept" and painted == [1]


@pytest.mark.parametrize("path", ["/trickle", "/trickle-head", "/redir?to=/trickle"])
def test_a_fetch_has_a_deadline_whatever_the_host_sends(hosts, demo_model, monkeypatch, path):
    """FETCH_TIMEOUT_S bounds each read only: a byte every 50 ms never trips it, the deadline does."""
    monkeypatch.setattr(images_module, "FETCH_DEADLINE_S", 0.3)
    host = hosts()
    backend = QGNBackend(demo_model, "cpu")
    with pytest.raises(RequestError) as info:
        backend.load_image(host.url + path)
    assert info.value.status == 504 and "took longer than 0.3 s" in str(info.value)


def test_fetches_at_once_are_bounded(hosts, demo_model, monkeypatch):
    monkeypatch.setattr(images_module, "MAX_FETCHES", 1)
    monkeypatch.setattr(images_module, "FETCH_WAIT_S", 0.2)
    host = hosts()
    backend = QGNBackend(demo_model, "cpu")
    first = []
    worker = threading.Thread(target=lambda: first.append(backend.load_image(host.url + "/hold")))
    worker.start()
    try:
        assert host.seen.wait(30)
        with pytest.raises(RequestError) as info:  # the one slot is taken: refused, the host never asked
            backend.load_image(host.url + "/png")
        assert info.value.status == 503 and "busy" in str(info.value)
        assert [p for p, _ in host.requests] == ["/hold"]
    finally:
        host.release.set()
        worker.join(60)
    assert first[0].shape == (PNG_SIZE[1], PNG_SIZE[0], 3)
    assert backend.load_image(host.url + "/png").shape == (PNG_SIZE[1], PNG_SIZE[0], 3)  # the slot came back


def brush_webhook():
    hook = webhook()
    hook["annotation"]["result"][0] = {"from_name": "tag", "to_name": "image", "type": "brushlabels",
                                       "original_width": 384, "original_height": 256,
                                       "value": {"rle": encode_ls_rle(np.ones((256, 384), bool)),
                                                 "brushlabels": ["road"]}}
    return hook


@pytest.mark.parametrize("field, change", [
    ("task.data", lambda h: h["task"].update(data=[1])),
    ("task.data", lambda h: h["task"].update(data="images/scene_01.png")),
    ("task.id", lambda h: h["task"].update(id=[1])),
    ("project.id", lambda h: h["project"].update(id={"a": 1})),
    ("project", lambda h: h.update(project=[1])),
    ("annotation.result", lambda h: h["annotation"].update(result=5)),
    ("annotation.result[0]", lambda h: h["annotation"].update(result=[5])),
    ("annotation.result[0].value.brushlabels", lambda h: h["annotation"]["result"][0]["value"].update(brushlabels=5)),
    ("annotation.result[0].value.brushlabels", lambda h: h["annotation"]["result"][0]["value"].update(brushlabels={"a": 1})),
    ("annotation.result[0].value.brushlabels", lambda h: h["annotation"]["result"][0]["value"].update(brushlabels="road")),
    ("annotation.result[0].value.brushlabels", lambda h: h["annotation"]["result"][0]["value"].update(brushlabels=[3])),
])
def test_a_webhook_of_the_wrong_shape_gets_400_naming_the_field(serve, tmp_path, field, change):
    port, backend = serve(document_root=samples_dir(), train_out=tmp_path)
    hook = brush_webhook()
    change(hook)
    status, answer = post(port, "/webhook", hook)
    assert status == 400 and answer["error"].startswith(field + " ") and "Traceback" not in answer["error"], answer
    assert not backend.corrections
    assert post(port, "/webhook", brush_webhook()) == (201, {"status": "kept", "corrections": 1, "train_every": 10})


def test_an_absolute_path_outside_the_root_says_nothing_of_its_existence(serve, tmp_path):
    (tmp_path / "outside.png").write_bytes(png_bytes())
    port, _ = serve(document_root=samples_dir())
    config = HOOK_CONFIG
    answers = [post(port, "/predict", {"tasks": [{"id": 1, "data": {"image": str(tmp_path / name)}}],
                                       "label_config": config}) for name in ("outside.png", "missing.png")]
    assert answers[0][0] == answers[1][0] == 422
    assert answers[0][1]["error"].replace("outside.png", "missing.png") == answers[1][1]["error"]
    inside = str(samples_dir().resolve() / "images" / "scene_01.png")  # inside the root it is read
    assert post(port, "/predict", {"tasks": [{"id": 1, "data": {"image": inside}}], "label_config": config})[0] == 200


@pytest.mark.parametrize("to_name", ["photo,other", "other, photo", "photo"])
def test_a_brush_labelling_several_objects_labels_its_image(to_name):
    config = (f'<View><Text name="other" value="$text"/><Image name="photo" value="$img"/>'
              f'<BrushLabels name="paint" toName="{to_name}"><Label value="road"/></BrushLabels></View>')
    assert brush_target(config) == BrushTarget("paint", "photo", "img", ("road",))
    with pytest.raises(ConfigError, match="no <Image>"):
        brush_target(config.replace('name="photo"', 'name="pic"'))


@pytest.mark.parametrize("request_head, status", [
    (b"PUT /predict HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    (b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", 505),
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431),
])
def test_http_servers_own_errors_are_json_too(serve, request_head, status):
    port, _ = serve()
    raw = talk(port, request_head)
    (got, answer), = responses(raw)
    assert got == status and answer["error"] and b"application/json" in raw.split(b"\r\n\r\n")[0]


@pytest.mark.parametrize("lengths", [[b"2", b"40"], [b"-1"], [b"1_2"]])
def test_a_content_length_that_does_not_frame_the_body_gets_400(serve, lengths):
    """Two different Content-Length headers were accepted (the first won: request smuggling),
    '-1' answered 413 and '1_2' was read as 12."""
    port, _ = serve()
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\n" + b"".join(b"Content-Length: %s\r\n" % v for v in lengths)
    (got, answer), = responses(talk(port, head + b"Connection: close\r\n\r\n{}"))
    assert got == 400 and "Content-Length" in answer["error"]


def test_a_client_that_left_is_one_quiet_line(serve, monkeypatch, capsys):
    """The answer to a client that closed its connection fails with BrokenPipe: a line, no traceback."""
    port, backend = serve(quiet=False)
    left, finished = threading.Event(), threading.Event()
    monkeypatch.setattr(backend, "health", lambda: left.wait(30) and {"status": "UP"})
    original = Handler.answer

    def answer(self, *args, **kwargs):
        try:
            original(self, *args, **kwargs)
        finally:
            finished.set()

    monkeypatch.setattr(Handler, "answer", answer)
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # close = reset
    sock.close()
    left.set()
    assert finished.wait(30)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "the client left before its 200 answer was sent" in err


@pytest.mark.parametrize("token", ["SECRET", None])
def test_without_a_label_studio_url_the_first_setup_names_it_for_good(hosts, serve, token):
    """A second /setup (unauthenticated) moved the host the token — --token's or the first
    /setup's — was sent to. Label Studio calls /setup again and again, always with its own address."""
    studio, other = hosts(), hosts()
    port, backend = serve(token=token)
    setup = {"project": "1.1700000000", "schema": HOOK_CONFIG, "hostname": studio.url, "access_token": "LS-TOKEN"}
    assert post(port, "/setup", setup) == (200, {"model_version": "qgn-demo"})
    assert post(port, "/setup", {**setup, "hostname": studio.url + "/", "project": "2.1700000001"})[0] == 200
    status, answer = post(port, "/setup", {**setup, "hostname": other.url, "access_token": "x"})
    assert status == 409 and studio.url in answer["error"] and "--label-studio-url" in answer["error"]
    assert backend.load_image("/data/upload/1/png.png").shape == (PNG_SIZE[1], PNG_SIZE[0], 3)
    assert studio.requests == [("/data/upload/1/png.png", f"Token {token or 'LS-TOKEN'}")]
    assert other.requests == []


def test_a_token_without_a_label_studio_url_is_warned_of(run_cli, monkeypatch):
    import qgn.serve.server as server_module

    monkeypatch.setattr(server_module.QGNServer, "serve_forever", lambda self: None)  # started, then stopped at once
    code, out, err = run_cli("serve", "--model", "demo", "--port", "0", "--token", "SECRET")
    assert code == 0 and "warning: a --token" in err and "--label-studio-url" in err
    code, out, err = run_cli("serve", "--model", "demo", "--port", "0", "--token", "SECRET",
                             "--label-studio-url", "http://127.0.0.1:8080")
    assert code == 0 and "warning" not in err


class FakeTraining:
    """Stands in for ``QGNBackend._train``: records each fine-tune's annotation count and how many
    ran at once, and holds each until ``release``."""

    def __init__(self):
        self.runs: list[int] = []
        self.running = self.most = 0
        self.started = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.lock = threading.Lock()

    def __call__(self, pairs, served):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.runs.append(len(pairs))
        self.started.release()
        assert self.release.acquire(timeout=60)
        with self.lock:
            self.running -= 1


def test_training_requests_coalesce_into_at_most_one_more_run(serve, tmp_path, monkeypatch):
    """START_TRAINING is unauthenticated and each fine-tune writes a model: at most one runs, those
    asked for while it runs make one more (when annotations came in meanwhile), and none follows
    when nothing came in since the last."""
    port, backend = serve(document_root=samples_dir(), train_out=tmp_path)
    fake = FakeTraining()
    monkeypatch.setattr(backend, "_train", fake)
    start = {"action": "START_TRAINING", "project": {"id": 7}}
    assert post(port, "/webhook", webhook())[1]["status"] == "kept"
    assert post(port, "/webhook", start)[1] == {"status": "training", "corrections": 1}
    assert fake.started.acquire(timeout=60)
    answers = []
    clients = [threading.Thread(target=lambda: answers.append(post(port, "/webhook", start)[1]["status"]))
               for _ in range(6)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(60)
    assert answers == ["training"] * 6  # nothing new yet: the run in flight covers them
    second = webhook()
    second["task"]["id"] = 2
    assert post(port, "/webhook", second)[1]["status"] == "kept"
    assert [post(port, "/webhook", start)[1]["status"] for _ in range(3)] == ["queued"] * 3
    fake.release.release()
    assert fake.started.acquire(timeout=60)  # the one more run, on both annotations
    fake.release.release()
    backend.training.join(60)
    assert fake.runs == [1, 2] and fake.most == 1
    status, answer = post(port, "/webhook", start)
    assert answer["status"] == "up to date" and fake.runs == [1, 2]
    assert post(port, "/webhook", webhook())[1]["status"] == "kept"  # an update of task 1: new again
    assert post(port, "/webhook", start)[1]["status"] == "training"
    fake.release.release()
    backend.training.join(60)
    assert fake.runs == [1, 2, 2]


def scene_task(number: int, id: int | None = None) -> dict:
    return {"id": id or number, "data": {"image": f"images/scene_{number:02d}.png"}}


def test_more_tasks_than_the_limit_get_the_first_alone_and_the_limit_named(serve, monkeypatch):
    """One cached image repeated 300,000 times was answered in full (22 MB asked 5.9 GB of JSON).
    Over ``QGN_SERVE_MAX_TASKS`` only the first task is answered, with an error naming the limit:
    Label Studio (which sends every selected task in one request) then asks for each task alone."""
    monkeypatch.setenv("QGN_SERVE_MAX_TASKS", "3")
    port, backend = serve(document_root=samples_dir())
    inferred = []
    original = backend.infer
    monkeypatch.setattr(backend, "infer", lambda *a: inferred.append(1) or original(*a))
    status, alone = post(port, "/predict", {"tasks": [scene_task(1)], "label_config": HOOK_CONFIG})
    assert status == 200 and len(alone["results"]) == 1 and "errors" not in alone
    status, answer = post(port, "/predict", {"tasks": [scene_task(1)] * 3, "label_config": HOOK_CONFIG})
    assert status == 200 and answer["results"] == alone["results"] * 3  # at the limit: all of them
    status, answer = post(port, "/predict", {"tasks": [scene_task(n) for n in (1, 2, 3, 4)], "label_config": HOOK_CONFIG})
    assert status == 200 and answer["results"] == alone["results"]
    (error,) = answer["errors"]
    assert "4 tasks" in error and "at most 3" in error and "QGN_SERVE_MAX_TASKS" in error and "fewer tasks" in error
    assert len(inferred) == 1  # scenes 2-4 were never predicted


def test_results_over_the_byte_limit_stop_the_batch(serve, monkeypatch):
    port, backend = serve(document_root=samples_dir())
    status, alone = post(port, "/predict", {"tasks": [scene_task(n) for n in (1, 2, 3, 4)], "label_config": HOOK_CONFIG})
    sizes = [len(json.dumps(result)) for result in alone["results"]]
    backend.max_response_bytes = sizes[0] + sizes[1] + 10  # two fit, the third does not
    backend.cache.clear()
    inferred = []
    original = backend.infer
    monkeypatch.setattr(backend, "infer", lambda *a: inferred.append(1) or original(*a))
    status, answer = post(port, "/predict", {"tasks": [scene_task(n) for n in (1, 2, 3, 4)], "label_config": HOOK_CONFIG})
    assert status == 200 and answer["results"] == alone["results"][:1]  # one result: Label Studio asks one by one
    (error,) = answer["errors"]
    assert f"more than {backend.max_response_bytes} bytes" in error and "QGN_SERVE_MAX_RESPONSE_BYTES" in error
    assert len(inferred) == 3  # the fourth was never predicted
    assert post(port, "/predict", {"tasks": [scene_task(2)], "label_config": HOOK_CONFIG}) == \
        (200, {"results": alone["results"][1:2], "model_version": "qgn-demo"})
    backend.max_response_bytes = sizes[0] - 1  # one result alone is too large: a 413 saying so
    status, answer = post(port, "/predict", {"tasks": [scene_task(1)], "label_config": HOOK_CONFIG})
    assert status == 413 and "QGN_SERVE_MAX_RESPONSE_BYTES" in answer["error"]


def test_the_limits_are_read_from_the_environment_and_a_bad_value_stops_qgn_serve(run_cli, monkeypatch):
    import qgn.serve.server as server_module

    monkeypatch.setattr(server_module.QGNServer, "serve_forever", lambda self: None)  # a start that passes stops
    monkeypatch.setenv("QGN_SERVE_MAX_TASKS", "0")
    code, out, err = run_cli("serve", "--model", "demo", "--port", "0")
    assert code == 2 and err.count("\n") == 1 and err.startswith("qgn serve: error: ") and "QGN_SERVE_MAX_TASKS" in err
    monkeypatch.setenv("QGN_SERVE_MAX_TASKS", "5000")
    monkeypatch.setenv("QGN_SERVE_REQUEST_DEADLINE", "never")
    code, out, err = run_cli("serve", "--model", "demo", "--port", "0")
    assert code == 2 and "QGN_SERVE_REQUEST_DEADLINE" in err and "QGN_SERVE_MAX_TASKS" not in err
    monkeypatch.delenv("QGN_SERVE_REQUEST_DEADLINE")
    monkeypatch.setenv("QGN_SERVE_PREDICT_DEADLINE", "0")
    code, out, err = run_cli("serve", "--model", "demo", "--port", "0")
    assert code == 2 and err.count("\n") == 1 and "QGN_SERVE_PREDICT_DEADLINE='0'" in err


def drip(port: int, data: bytes, step: float = 0.02) -> bytes:
    """Sends ``data`` one byte per ``step`` s (far below the per-read timeout) until the server
    answers or closes; what it answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.settimeout(step)
        for byte in data:
            try:
                sock.sendall(bytes([byte]))
                got = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return b""
            sock.settimeout(30)
            return got + read_all(sock)
        return b"(still open after every byte)"


@pytest.mark.parametrize("part, data", [
    ("request line", b"GET /" + b"a" * 1000),
    ("headers", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000),
    ("body", b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b" " * 1000),
])
def test_a_request_dripping_a_byte_now_and_then_is_cut_off_at_its_deadline(serve, monkeypatch, part, data):
    """A byte every 59 s kept one of the 64 connection slots for ever: the request's line, headers
    and body now have QGN_SERVE_REQUEST_DEADLINE in all (here 0.5 s; 1000 bytes at 20 ms take 20 s)."""
    monkeypatch.setenv("QGN_SERVE_REQUEST_DEADLINE", "0.5")
    port, _ = serve()
    (status, answer), = responses(drip(port, data))
    assert status == 408 and "did not arrive within 0.5 s" in answer["error"]
    assert "QGN_SERVE_REQUEST_DEADLINE" in answer["error"], part
    raw = talk(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # others are served
    assert responses(raw)[0][0] == 200


def test_a_client_that_does_not_read_its_answer_is_cut_off(serve, monkeypatch, capsys):
    monkeypatch.setenv("QGN_SERVE_REQUEST_DEADLINE", "0.5")
    port, backend = serve(quiet=False, document_root=samples_dir())
    data = json.dumps({"tasks": [scene_task(1)] * 1000, "label_config": HOOK_CONFIG}).encode()  # megabytes back
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
        for _ in range(600):  # the log says so once the deadline has cut the answer off
            if "did not take its 200 answer within 0.5 s" in capsys.readouterr().err:
                break
            threading.Event().wait(0.05)
        else:
            pytest.fail("the answer was never cut off")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")  # it had begun: the client was too slow to take it
    raw = talk(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # others are served
    assert responses(raw)[0][0] == 200


def counted_infer(backend, monkeypatch, before=None) -> list:
    """The images ``backend`` predicts from now on (``before()`` runs ahead of each)."""
    inferred = []
    original = backend.infer

    def infer(*args):
        if before is not None:
            before()
        inferred.append(1)
        return original(*args)

    monkeypatch.setattr(backend, "infer", infer)
    return inferred


def test_a_batch_stops_at_its_deadline_and_answers_the_tasks_done(serve, monkeypatch):
    """Label Studio waits 100 s for /predict, then drops the whole answer; the backend went on with
    the batch anyway. Now a task starts only while the slowest so far still fits in
    QGN_SERVE_PREDICT_DEADLINE: here 1 s, and each image takes at least 0.6 s, so one is predicted
    and the others hold their places with the reason (Label Studio keeps the one and skips them)."""
    monkeypatch.setenv("QGN_SERVE_PREDICT_DEADLINE", "1")
    port, backend = serve(document_root=samples_dir())
    inferred = counted_infer(backend, monkeypatch, lambda: threading.Event().wait(0.6))
    tasks = [scene_task(n) for n in (1, 2, 3, 4)]
    status, answer = post(port, "/predict", {"tasks": tasks, "label_config": HOOK_CONFIG})
    assert status == 200 and len(answer["results"]) == 4 and len(inferred) == 1
    first, *rest = answer["results"]
    assert first["result"] and all("result" not in r and "not predicted" in r["error"] for r in rest)
    assert [r["error"].split(":")[0] for r in rest] == ["task 2", "task 3", "task 4"]
    (error,) = answer["errors"]
    assert "3 of 4 tasks not predicted" in error and "QGN_SERVE_PREDICT_DEADLINE" in error
    status, again = post(port, "/predict", {"tasks": tasks[1:2], "label_config": HOOK_CONFIG})  # the rest, asked again
    assert status == 200 and again["results"][0]["result"] and len(inferred) == 2


def test_a_batch_stops_when_the_client_has_closed_the_connection(serve, monkeypatch):
    """A client that gave up (Label Studio after 100 s) left the backend predicting the rest of
    the batch for nobody while later requests shared its lock: it stops at the next task."""
    port, backend = serve(document_root=samples_dir())
    entered, release, answered = threading.Event(), threading.Event(), threading.Event()
    inferred = counted_infer(backend, monkeypatch, lambda: [entered.set(), release.wait(30)])
    predict = backend.predict
    monkeypatch.setattr(backend, "predict", lambda *a: [predict(*a), answered.set()][0])
    data = json.dumps({"tasks": [scene_task(n) for n in (1, 2, 3, 4)], "label_config": HOOK_CONFIG}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
        assert entered.wait(30)  # the first image is being predicted when the client leaves
    threading.Event().wait(0.2)  # the close reaches the server
    release.set()
    assert answered.wait(60)
    assert len(inferred) == 1


def tiny_tasks_body(count: int) -> bytes:
    tasks = [{"id": i, "data": {"image": f"images/missing_{i}.png"}} for i in range(count)]
    return json.dumps({"tasks": tasks, "label_config": HOOK_CONFIG, "project": "1.1700000000"}).encode()


def test_reading_a_predict_body_of_many_tiny_tasks_keeps_only_the_tasks_it_may_use(serve, monkeypatch):
    """A /predict of 330,000 tiny tasks (22 MB, under the 64 MiB body limit) took 184 MB to parse,
    though at most QGN_SERVE_MAX_TASKS are predicted: the server now holds the body's bytes and the
    tasks it may use. Reference: json.loads of the same body, measured here (tracemalloc)."""
    import tracemalloc

    monkeypatch.setenv("QGN_SERVE_MAX_TASKS", "3")
    port, backend = serve(document_root=samples_dir())
    data = tiny_tasks_body(100_000)
    text = data.decode()
    tracemalloc.start()
    try:
        json.loads(text)
        reference = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        status, answer = responses(talk(port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n"
                                        b"\r\n%s" % (len(data), data)))[0]
        served = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert status == 413 and "100000 tasks" in answer["error"] and "at most 3" in answer["error"]
    assert served < reference / 2, (served, reference)


def read_text(text: str, chunk: int, keep: int = 3, keep_chars: int = 1000, max_value: int = 1000):
    """``qgn.serve.body.read_body`` of ``text`` arriving ``chunk`` bytes at a time."""
    from qgn.serve import body

    stream = io.BytesIO(text.encode())
    old, body.CHUNK = body.CHUNK, chunk
    try:
        return body.read_body(stream.read, "tasks", keep, ("id", "data"), keep_chars, max_value)
    finally:
        body.CHUNK = old


@pytest.mark.parametrize("chunk", [1, 3, 65536])
@pytest.mark.parametrize("text", [
    '{"tasks": [{"id": 1, "data": {"image": "a"}, "annotations": [{"result": []}], "predictions": []}, 2, '
    '{"id": 3}, [4], {"data": {}}], "label_config": "<View/>", "params": {"context": null}, "tasks2": [1, 2]}',
    ' { } ', '{"tasks": []}', '{"a": -1.5e3, "tasks": {"not": "a list"}, "b": [true, false, null], "c": 125e-2}',
    '{"tasks": [12345, 1e5, -0.5], "é": "ünïcödé ✓ \\ud83d\\ude00", "n": 123456789012345678901234567890}',
])
def test_a_body_reads_as_json_loads_with_the_tasks_cut_to_what_predict_uses(text, chunk):
    expected = json.loads(text)
    got = read_text(text, chunk)
    if isinstance(expected.get("tasks"), list):
        tasks = expected["tasks"]
        assert got["tasks"].total == len(tasks) and not got["tasks"].full
        expected["tasks"] = [{k: t[k] for k in ("id", "data") if k in t} if isinstance(t, dict) else t
                             for t in tasks[:3]]
    assert got == expected


def test_the_tasks_kept_are_bounded_by_their_size_too():
    tasks = [{"id": i, "data": {"image": "x" * 300}, "predictions": ["y" * 900]} for i in range(5)]
    got = read_text(json.dumps({"tasks": tasks}), 4096, keep=10, keep_chars=1000, max_value=5000)["tasks"]
    assert got == [{"id": i, "data": {"image": "x" * 300}} for i in range(3)] and got.total == 5 and got.full
    from qgn.serve.body import ValueTooLarge

    with pytest.raises(ValueTooLarge):
        read_text(json.dumps({"tasks": tasks}), 4096, keep=10, keep_chars=1000, max_value=500)


@pytest.mark.parametrize("chunk", [1, 65536])
@pytest.mark.parametrize("text", ['{"a": 1,}', '{"a" 1}', '{"a": 1} x', '{', '{"tasks": [1,]}', '{"tasks": [1 2]}',
                                  '{"tasks": [1', '{"a": 1 "b": 2}', 'nope', '', '{"tasks": [{"id": }]}', '"a" 1'])
def test_a_bad_body_gets_json_loads_own_reason_and_place(text, chunk):
    from qgn.serve.body import NotJSON

    with pytest.raises(json.JSONDecodeError) as reference:
        json.loads(text)
    with pytest.raises(NotJSON) as got:
        read_text(text, chunk)
    assert str(got.value) == f"{reference.value.msg} at character {reference.value.pos}"


def test_the_same_image_under_two_tasks_gets_each_tasks_own_region_ids(serve, monkeypatch):
    """A result cached by image carried the first task's ids (``qgn1_0`` on task 7 in Label Studio
    1.23.2). Nothing there breaks — the editor makes area ids ``<id>#<annotation>`` — but an id
    names its task (``qgn<task id>_<class>``), and the byte count of the batch stays exact."""
    port, backend = serve(document_root=samples_dir())
    inferred = counted_infer(backend, monkeypatch)
    tasks = [{"id": 4, "data": {"image": "images/scene_01.png"}}, {"id": 'a"5', "data": {"image": "images/scene_01.png"}}]
    status, answer = post(port, "/predict", {"tasks": tasks, "label_config": HOOK_CONFIG})
    assert status == 200 and len(inferred) == 1
    first, second = answer["results"]
    assert first["result"] and all(r["id"].startswith("qgn4_") for r in first["result"])
    assert [r["id"] for r in second["result"]] == [r["id"].replace("qgn4_", 'qgna"5_') for r in first["result"]]
    assert [dict(r, id=None) for r in second["result"]] == [dict(r, id=None) for r in first["result"]]
    target = brush_target(HOOK_CONFIG)
    again, length = backend.predict_task(tasks[1], target, backend.check_target(target))
    assert again == second and length == len(json.dumps(again))


def test_a_predict_body_carrying_large_earlier_predictions_is_predicted(serve, monkeypatch):
    """Label Studio sends each task with its annotations and predictions: retrieving predictions
    (after a fine-tune, say) for tasks holding large ones made a body over the 64 MiB limit, a 413,
    and Label Studio stored nothing (live, 1.23.2: 20 tasks with a 3.5 MB old prediction each). Now
    only what /predict uses is kept; here the limit is 1 MiB and the body 4 MB."""
    import qgn.serve.server as server_module

    monkeypatch.setattr(server_module, "MAX_BODY_BYTES", 1 << 20)
    port, backend = serve(document_root=samples_dir())
    old = {"model_version": "old", "result": [{"type": "brushlabels", "value": {"rle": list(range(100_000))}}]}
    tasks = [dict(scene_task(n), predictions=[old], annotations=[]) for n in (1, 2, 3, 1, 2, 3)]
    data = json.dumps({"tasks": tasks, "label_config": HOOK_CONFIG}).encode()
    assert len(data) > 4_000_000
    status, answer = responses(talk(port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                                          b"Connection: close\r\n\r\n%s" % (len(data), data)))[0]
    assert status == 200 and "errors" not in answer and all(r["result"] for r in answer["results"])
    status, alone = post(port, "/predict", {"tasks": [scene_task(2)], "label_config": HOOK_CONFIG})
    assert answer["results"][1] == alone["results"][0]
    status, answer = post(port, "/webhook", {"action": "X", "pad": "x" * (2 << 20)})  # other routes keep the limit
    assert status == 413


def test_annotations_deleted_in_label_studio_are_not_learnt_from(serve, tmp_path):
    """Label Studio 1.23.2 posts ANNOTATIONS_DELETED ({"annotations": [{"id"}]}) and TASKS_DELETED
    ({"tasks": [{"id"}]}); both were ignored, so a wrong annotation deleted there was still fine-tuned
    on (live: two annotations, one deleted and the other's task deleted, START_TRAINING trained on 2)."""
    port, backend = serve(document_root=samples_dir(), train_out=tmp_path)
    second = webhook(image="images/scene_02.png")
    second["task"]["id"], second["annotation"]["id"] = 2, 10
    other = webhook()
    other["project"] = dict(other["project"], id=8)
    for hook in (webhook(), second, other):
        assert post(port, "/webhook", hook)[1]["status"] == "kept"
    assert len(backend.corrections) == 3
    deleted = {"action": "ANNOTATIONS_DELETED", "project": {"id": 7}, "annotations": [{"id": 9}, {"id": 77}]}
    assert post(port, "/webhook", deleted) == (201, {"status": "forgotten", "forgotten": 1, "corrections": 2})
    deleted = {"action": "TASKS_DELETED", "project": {"id": 7}, "tasks": [{"id": 2}]}
    assert post(port, "/webhook", deleted) == (201, {"status": "forgotten", "forgotten": 1, "corrections": 1})
    assert list(backend.corrections) == [(8, 1)]  # another project's annotation of the same ids stays
    status, answer = post(port, "/webhook", {"action": "TASKS_DELETED", "project": {"id": 7}, "tasks": {"id": 2}})
    assert status == 400 and "tasks" in answer["error"]


def test_tasks_whose_data_is_over_the_limit_get_the_first_alone(serve, monkeypatch):
    """The tasks kept as a body is read are bounded in size too: beyond, the first task is answered
    alone with the reason, and Label Studio asks for each task on its own."""
    import qgn.serve.server as server_module

    monkeypatch.setattr(server_module, "MAX_BODY_BYTES", 200)
    port, _ = serve(document_root=samples_dir())
    tasks = [dict(scene_task(n), data={"image": f"images/scene_0{n}.png", "note": "x" * 60}) for n in (1, 2, 3)]
    data = json.dumps({"tasks": tasks, "label_config": HOOK_CONFIG}).encode()
    status, answer = responses(talk(port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                                          b"Connection: close\r\n\r\n%s" % (len(data), data)))[0]
    assert status == 200 and len(answer["results"]) == 1 and answer["results"][0]["result"]
    (error,) = answer["errors"]
    assert "only the first task" in error and "3 tasks" in error and "fewer tasks" in error


def test_annotations_created_from_predictions_in_bulk_wait_for_a_person(serve, tmp_path):
    """*Create Annotations From Predictions* makes Label Studio 1.23.2 post one ANNOTATIONS_CREATED
    whose ``annotation`` and ``task`` are lists: the model's own predictions, not reviewed yet.
    Fine-tuning on them would teach the model its own mistakes, so they are not kept (and say so);
    one a person then updates (ANNOTATION_UPDATED) is learnt from like any other."""
    port, backend = serve(document_root=samples_dir(), train_out=tmp_path)
    created = [webhook(), webhook(image="images/scene_02.png")]
    for number, hook in enumerate(created, 1):
        hook["task"]["id"], hook["annotation"]["id"] = number, 100 + number
    bulk = {"action": "ANNOTATIONS_CREATED", "project": created[0]["project"],
            "annotation": [h["annotation"] for h in created], "task": [h["task"] for h in created]}
    status, answer = post(port, "/webhook", bulk)
    assert answer["status"] == "ignored" and answer["annotations"] == 2 and "updates it" in answer["reason"]
    assert backend.corrections == {} and backend.new_since_training == 0
    updated = {**created[1], "action": "ANNOTATION_UPDATED"}
    assert post(port, "/webhook", updated)[1]["status"] == "kept"
    assert [(key, annotation) for key, (_, _, annotation) in backend.corrections.items()] == [((7, 2), 102)]


def test_an_annotation_kept_for_fine_tuning_takes_a_byte_a_pixel(serve, tmp_path):
    """Its label map was kept as made, int64: 8 bytes a pixel, 92 MiB for a 12-megapixel photo beside
    its 34 MiB image, and up to 200 are kept (``MAX_CORRECTIONS``)."""
    port, backend = serve(document_root=samples_dir(), train_out=tmp_path)
    assert post(port, "/webhook", brush_webhook())[1]["status"] == "kept"
    ((image, label, _),) = backend.corrections.values()
    classes = backend.current.model.config.classes
    assert label.nbytes == 384 * 256 and image.nbytes == 384 * 256 * 3
    np.testing.assert_array_equal(label, np.full((256, 384), classes.names.index("road")))
    from qgn.serve.corrections import compact_label

    for values in ([0, 7, 255], [0, 300], [-1, 10], [0, 2**40], []):
        made = np.array(values, np.int64)
        np.testing.assert_array_equal(compact_label(made), made)
    assert [compact_label(np.array(v)).itemsize for v in ([0, 255], [0, 300], [-1, 10])] == [1, 2, 2]


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGHUP"])
def test_stopped_by_a_signal_it_leaves_no_fetched_image_behind(hosts, tmp_path, signal_name):
    """``kill``, systemd and docker stop qgn serve with SIGTERM (a closed terminal with SIGHUP): it
    died at once, leaving each image being fetched in a ``qgn-serve-*`` temporary folder."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    host = hosts()
    temp = tmp_path / "temp"
    temp.mkdir()
    wanted = getattr(signal, signal_name)
    # as from a terminal: a test run under nohup (a CI runner) would hand its ignored SIGHUP down, and
    # qgn serve leaves an ignored signal ignored (test_a_signal_ignored_when_it_started_stays_ignored)
    serve = subprocess.Popen([sys.executable, "-m", "qgn", "serve", "--threads", "1", "--port", "0"],
                             cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "TMPDIR": str(temp), "OMP_NUM_THREADS": "1"},
                             preexec_fn=lambda: signal.signal(wanted, signal.SIG_DFL))
    try:
        port = int(serve.stdout.readline().decode().split(" on http://127.0.0.1:")[1].split(",")[0])
        client = socket.create_connection(("127.0.0.1", port), timeout=60)
        body = json.dumps({"tasks": [{"id": 1, "data": {"image": host.url + "/hold"}}], "label_config": HOOK_CONFIG})
        client.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body.encode()))
        assert host.seen.wait(60)
        assert [p.name[:10] for p in temp.iterdir()] == ["qgn-serve-"]  # the fetch's folder
        serve.send_signal(wanted)
        code = serve.wait(60)
        assert list(temp.iterdir()) == []
        assert code == 0 and "qgn serve: stopped" in serve.stderr.read().decode()
        client.close()
    finally:
        host.release.set()
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def test_a_failed_fine_tune_can_be_asked_for_again(serve, tmp_path):
    """A fine-tune whose model could not be saved (a full disk, --train-out not writable) counted
    its annotations as learnt: START_TRAINING after the cause was fixed answered "up to date" and
    nothing more was trained until a new annotation came in."""
    blocked = tmp_path / "models"
    blocked.write_text("a file where the folder should be")
    port, backend = serve(document_root=samples_dir(), train_out=blocked, finetune_iterations=1)
    start = {"action": "START_TRAINING", "project": {"id": 7}}
    assert post(port, "/webhook", brush_webhook())[1]["status"] == "kept"
    assert post(port, "/webhook", start)[1]["status"] == "training"
    backend.training.join(300)
    assert backend.training_status.startswith("failed:") and backend.current.version == "qgn-demo"
    blocked.unlink()  # the cause fixed
    assert post(port, "/webhook", start)[1]["status"] == "training"
    backend.training.join(300)
    assert backend.current.version == "qgn-demo-ls1", backend.training_status
    assert (blocked / "demo-ls1.safetensors").is_file()


def test_two_servers_fine_tuning_into_one_folder_never_take_the_same_version(serve, tmp_path, monkeypatch):
    """Each found the next free number by looking, so one saving between the other's look and its save
    took the same number: the other's fine-tune failed (or, both saving at once, one model replaced
    the other's file)."""
    import qgn.train.finetune as finetune_module

    _, first = serve(document_root=samples_dir(), train_out=tmp_path, finetune_iterations=1)
    import qgn.fileio

    monkeypatch.setattr(qgn.fileio, "folder_locks_work", lambda: False)  # where no lock refuses the second (Windows)
    monkeypatch.setattr(qgn.fileio, "lock_folder", lambda folder, wait=True: None)
    _, second = serve(document_root=samples_dir(), train_out=tmp_path, finetune_iterations=1)
    monkeypatch.undo()
    classes = first.current.model.config.classes
    from qgn.data.imageio import read_rgb

    pair = (read_rgb(samples_dir() / "images" / "scene_01.png"), np.full((256, 384), classes.names.index("road")), 9)
    save = finetune_module.save_new_model
    calls = []

    def save_after_the_other(*args, **kwargs):  # the second's number is chosen; the first saves now
        if not calls:
            calls.append(1)
            assert first._train([pair], first.current) is None, first.training_status
        return save(*args, **kwargs)

    monkeypatch.setattr(finetune_module, "save_new_model", save_after_the_other)
    assert second._train([pair], second.current) is None, second.training_status
    assert {first.current.version, second.current.version} == {"qgn-demo-ls1", "qgn-demo-ls2"}
    assert first.current.path != second.current.path
    from qgn.model.checkpoint import load_config

    for path in (first.current.path, second.current.path):
        assert load_config(path).extra["finetune"]["iterations_done"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-ls1.domain.json", "demo-ls1.json", "demo-ls1.safetensors",
                                                          "demo-ls2.domain.json", "demo-ls2.json", "demo-ls2.safetensors"]
    from qgn.domain import reference_for

    assert all(reference_for(path) is not None for path in (first.current.path, second.current.path))  # each its own


def test_a_webhook_slower_than_label_studios_wait_is_answered_and_read_in_order(serve, tmp_path, monkeypatch,
                                                                                 capsys):
    """Label Studio posts a webhook inside the request that made it (an annotator's Submit) and waits
    1 s for the answer (WEBHOOK_TIMEOUT). Keeping a 12-megapixel photo's annotation took 0.4–1.4 s here,
    so every such Submit waited Label Studio's whole second and it logged a timeout. Work longer than
    the wait is answered "accepted" and goes on, in the order the webhooks came."""
    port, backend = serve(document_root=samples_dir(), train_out=tmp_path)
    backend.webhooks.wait_s = 0.2
    release = threading.Event()
    keep = backend.keep_correction
    monkeypatch.setattr(backend, "keep_correction", lambda *a, **k: release.wait(60) and keep(*a, **k))
    answers = []
    client = threading.Thread(target=lambda: answers.append(post(port, "/webhook", webhook())))
    client.start()
    client.join(20)
    try:
        assert answers and answers[0][0] == 201 and answers[0][1]["status"] == "accepted"  # while it is read
        deleted = {"action": "ANNOTATIONS_DELETED", "project": {"id": 7}, "annotations": [{"id": 9}]}
        assert post(port, "/webhook", deleted)[1]["status"] == "accepted"  # after it, not before
        status, answer = post(port, "/webhook", {"action": "ANNOTATIONS_DELETED", "project": {"id": 7},
                                                 "annotations": {"id": 9}})
        assert status == 400 and "annotations" in answer["error"]  # a wrong shape is still answered at once
        assert post(port, "/webhook", webhook(image="images/gone.png"))[1]["status"] == "accepted"
    finally:
        release.set()
        client.join(60)
    assert backend.webhooks.settle(60)
    assert not backend.corrections  # kept, then deleted: in the order they came; the last one failed
    err = capsys.readouterr().err
    assert "ANNOTATION_CREATED of project 7 failed after it was answered" in err and "gone.png" in err


def test_stopped_during_a_fine_tune_it_exits_cleanly_and_saves_nothing(tmp_path):
    """Ctrl-C or SIGTERM while a fine-tune ran: the process left with torch training on another thread
    and aborted ("terminate called without an active exception", SIGABRT, maybe a core dump)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    models = tmp_path / "models"
    serve = subprocess.Popen([sys.executable, "-m", "qgn", "serve", "--threads", "1", "--port", "0", "--document-root",
                              str(samples_dir()), "--train-out", str(models), "--train-iters", "100000"],
                             cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        port = int(serve.stdout.readline().decode().split(" on http://127.0.0.1:")[1].split(",")[0])
        assert post(port, "/webhook", brush_webhook())[1]["status"] == "kept"
        assert post(port, "/webhook", {"action": "START_TRAINING", "project": {"id": 7}})[1]["status"] == "training"
        for _ in range(1200):  # until its steps run (the encoder's features are made first)
            health = json.loads(talk(port, b"GET /health HTTP/1.0\r\n\r\n").partition(b"\r\n\r\n")[2])
            if ": step " in health["training"]:
                break
            time.sleep(0.1)
        assert re.search(r": step \d+ of 100000(, loss |$)", health["training"]), health  # (then the time left)
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(120)
        err = serve.stderr.read().decode()
        assert code == 0 and "terminate called" not in err, err[-500:]
        assert not models.exists() or not [p for p in models.iterdir() if p.suffix in (".safetensors", ".json")]
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def test_a_signal_ignored_when_it_started_stays_ignored():
    """Under ``nohup qgn serve`` (SIGHUP ignored) closing the terminal stopped the server: its SIGHUP
    handler replaced the ignoring that nohup had set up."""
    import signal

    from qgn.cli.serve import stop_on_signals

    before = {name: signal.getsignal(getattr(signal, name)) for name in ("SIGTERM", "SIGHUP")}
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        stop_on_signals()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        assert callable(signal.getsignal(signal.SIGTERM))  # not ignored: it stops qgn serve as Ctrl-C does
        with pytest.raises(KeyboardInterrupt):
            signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)
    finally:
        for name, handler in before.items():
            signal.signal(getattr(signal, name), handler)


def test_stopping_reads_no_further_webhook_and_starts_no_fine_tune(serve, tmp_path, monkeypatch):
    """A START_TRAINING waiting behind a slow annotation when qgn serve was stopped was read after
    stop() had joined the (absent) fine-tune: it started one, and the process left with torch
    training on that thread (SIGABRT)."""
    port, backend = serve(document_root=samples_dir(), train_out=tmp_path, finetune_iterations=1)
    assert post(port, "/webhook", brush_webhook())[1]["status"] == "kept"
    backend.webhooks.wait_s = 0.2
    release, reading = threading.Event(), threading.Event()
    keep = backend.keep_correction
    monkeypatch.setattr(backend, "keep_correction",
                        lambda *a, **k: reading.set() or release.wait(60) and keep(*a, **k))
    slow = brush_webhook()
    slow["task"]["id"] = 2
    assert post(port, "/webhook", slow)[1]["status"] == "accepted"
    assert reading.wait(60)
    assert post(port, "/webhook", {"action": "START_TRAINING", "project": {"id": 7}})[1]["status"] == "accepted"
    stopper = threading.Thread(target=backend.stop)
    stopper.start()
    try:
        while not backend.stopping.is_set():
            stopper.join(0.01)
    finally:
        release.set()
    stopper.join(60)
    assert backend.webhooks.settle(60)
    assert backend.training is None and backend.training_status == "idle"
    assert backend.after_keeping("START_TRAINING")["status"] == "stopped"
    assert backend.training is None
    status, answer = post(port, "/webhook", {"action": "START_TRAINING", "project": {"id": 7}})
    assert status == 503 and "stopping" in answer["error"]


def test_a_model_file_that_appeared_after_its_number_was_taken_is_not_replaced(serve, tmp_path, monkeypatch):
    """The fine-tuned model was saved with overwrite=True (meant for the empty JSON placeholder its
    number's reservation made): a ``demo-ls1.safetensors`` put there after the reservation looked —
    another program's, a copy — was replaced by it."""
    _, backend = serve(document_root=samples_dir(), train_out=tmp_path, finetune_iterations=1)
    classes = backend.current.model.config.classes
    from qgn.data.imageio import read_rgb

    pair = (read_rgb(samples_dir() / "images" / "scene_01.png"), np.full((256, 384), classes.names.index("road")), 9)
    reserve = backend.reserve_number
    appeared = []

    def reserve_then_a_file_appears():
        n = reserve()
        if not appeared:
            appeared.append(tmp_path / f"demo-ls{n}.safetensors")
            appeared[0].write_bytes(b"someone else's weights")
        return n

    monkeypatch.setattr(backend, "reserve_number", reserve_then_a_file_appears)
    assert backend._train([pair], backend.current) is None, backend.training_status
    assert appeared[0].read_bytes() == b"someone else's weights"
    assert backend.current.version == "qgn-demo-ls2" and backend.current.path == tmp_path / "demo-ls2.safetensors"
    from qgn.model.checkpoint import load_config, load_model

    assert load_config(backend.current.path).extra["finetune"]["iterations_done"] == 1
    load_model(backend.current.path, "cpu")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-ls1.safetensors", "demo-ls2.domain.json",  # not
                                                          "demo-ls2.json", "demo-ls2.safetensors"]  # beside ls1


def test_a_second_qgn_serve_into_a_busy_train_out_is_one_line_naming_the_folder(run_cli, monkeypatch, tmp_path,
                                                                                 demo_model):
    import qgn.serve.server as server_module

    monkeypatch.setattr(server_module.QGNServer, "serve_forever", lambda self: None)  # a start that passes stops
    first = QGNBackend(demo_model, "cpu", train_out=tmp_path / "models")
    code, out, err = run_cli("serve", "--model", "demo", "--port", "0", "--train-out", tmp_path / "models")
    assert code == 2 and err.count("\n") == 1 and err.startswith("qgn serve: error: --train-out ")
    assert str(tmp_path / "models") in err and "another --train-out" in err
    for fd in first.kept.locks:
        os.close(fd)
    code, out, err = run_cli("serve", "--model", "demo", "--port", "0", "--train-out", tmp_path / "models")
    assert code == 0, err


@pytest.mark.parametrize("lengths", [[], [b"5"]])
def test_a_chunked_body_is_refused_and_nothing_after_it_is_read_as_a_request(serve, lengths):
    """With Transfer-Encoding and Content-Length both, the Content-Length framed the body and what
    a proxy honouring Transfer-Encoding took for its body ran as a second request (smuggling);
    RFC 9112 §6.1: such a connection is closed after the answer. One answer, a 411, then the end."""
    port, _ = serve()
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" + \
        b"".join(b"Content-Length: %s\r\n" % v for v in lengths)
    smuggled = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    answers = responses(talk(port, head + b"\r\n0\r\n\r\n" + smuggled))
    assert len(answers) == 1, answers
    assert answers[0][0] == 411 and "Transfer-Encoding" in answers[0][1]["error"]


def test_a_redirect_to_another_scheme_than_http_is_not_followed(hosts, demo_model, monkeypatch):
    """urllib follows a redirect to ftp://, where neither the fetch's deadline nor its size limit
    watches the connection: an image host sent qgn serve to any FTP port."""
    monkeypatch.setattr(images_module, "FETCH_TIMEOUT_S", 2.0)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    host = hosts()
    backend = QGNBackend(demo_model, "cpu")
    try:
        with pytest.raises(RequestError) as info:
            backend.load_image(host.url + f"/redir?to=ftp://127.0.0.1:{listener.getsockname()[1]}/x.png")
        with pytest.raises(TimeoutError):
            listener.accept()[0].close()  # nobody connected
    finally:
        listener.close()
    assert info.value.status == 424 and "ftp" in str(info.value) and "http" in str(info.value)


@pytest.mark.parametrize("text", ['{"tasks": [{"id": 1%s}]}' % ("0" * 5000), "1" * 5000])
def test_a_number_of_thousands_of_digits_is_a_body_that_is_not_json(text):
    """json refuses an integer of more than 4300 digits with a bare ValueError, which reached the
    client as a 422 about sys.set_int_max_str_digits; it is a body qgn serve does not read (400)."""
    from qgn.serve.body import NotJSON

    with pytest.raises(NotJSON, match="digits"):
        read_text(text, 65536, max_value=100000)


def test_bodies_received_at_once_are_bounded_in_all(serve, monkeypatch):
    """Each /predict body may be 1 GiB, and a body is taken as fast as it comes into a temporary
    file: 64 connections sending one each held 64 GiB of disk. The bytes of bodies being received
    at once are bounded (here 1000): a body beyond the bytes really received gets a 503 (Retry-After)
    before a byte of it is read, and once the first is done the next is taken."""
    monkeypatch.setattr(QGNServer, "max_body_bytes_at_once", 1000)
    port, _ = serve()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as holder:
        holder.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 800\r\nConnection: close\r\n\r\n{"
                       + b" " * 798)
        for _ in range(200):  # the holder's 799 bytes are received and held
            (status, answer), = responses(talk(port, b"POST /setup HTTP/1.1\r\nHost: x\r\nContent-Length: 300\r\n"
                                                     b"Connection: close\r\n\r\n" + b" " * 298 + b"{}"))
            if status == 503:
                break
            threading.Event().wait(0.05)
        assert status == 503 and "1000" in answer["error"] and "300" in answer["error"], answer
        refused = talk(port, b"POST /setup HTTP/1.1\r\nHost: x\r\nContent-Length: 300\r\n\r\n" + b" " * 298 + b"{}")
        assert [s for s, _ in responses(refused)] == [503]  # and closed, its body unread (talk returned)
        assert b"\r\nRetry-After: 1\r\n" in refused.split(b"\r\n\r\n")[0] + b"\r\n"
        holder.sendall(b"}")
        assert responses(read_all(holder))[0][0] == 400  # answered (no tasks): its bytes are given back
    assert post(port, "/setup", {})[0] == 200


@pytest.fixture
def held_server(demo_model):
    """A running ``QGNServer`` itself (its ``body_bytes`` are read); stopped after the test."""
    httpd = make_server(QGNBackend(demo_model, "cpu"), "127.0.0.1", 0, quiet=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def wait_for_body_bytes(httpd, done) -> None:
    for _ in range(600):
        if done(httpd.body_bytes):
            return
        threading.Event().wait(0.05)


def test_a_content_length_alone_holds_none_of_the_bytes_of_bodies_at_once(held_server):
    """The bytes of bodies received at once were reserved from the declared Content-Length before
    a byte arrived: 4 connections sending only headers that claim 1 GiB each got every Label
    Studio POST a 503 for as long as they stayed. Bytes count as they arrive."""
    port = held_server.server_address[1]
    holders = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(4)]
    try:
        for holder in holders:
            holder.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{"
                           % (1 << 30))
        # all four holders' headers read: 4 bytes held as received (4 GiB as once declared)
        wait_for_body_bytes(held_server, lambda held: held == 4 or held >= 4 << 30)
        assert post(port, "/setup", {})[0] == 200
        assert held_server.body_bytes == 4
    finally:
        for holder in holders:
            holder.close()
    wait_for_body_bytes(held_server, lambda held: held == 0)
    assert held_server.body_bytes == 0  # given back when they leave


def test_a_body_that_runs_over_the_bytes_at_once_while_arriving_gets_a_503(held_server):
    """A body admitted with room for it, whose bytes then do not fit beside another's that arrived
    meanwhile, is refused as its bytes come (503, Retry-After, closed); the other is served."""
    held_server.max_body_bytes_at_once = 1000
    port = held_server.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as first, \
            socket.create_connection(("127.0.0.1", port), timeout=30) as second:
        first.sendall(b"POST /setup HTTP/1.1\r\nHost: x\r\nContent-Length: 800\r\nConnection: close\r\n\r\n"
                      + b" " * 500)
        wait_for_body_bytes(held_server, lambda held: held >= 500)
        second.sendall(b"POST /setup HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\nConnection: close\r\n\r\n"
                       + b" " * 498)
        wait_for_body_bytes(held_server, lambda held: held >= 998)
        first.sendall(b" " * 298 + b"{}")  # 500 + 300 + 498 bytes: more than 1000
        refused = read_all(first)
        assert [s for s, _ in responses(refused)] == [503]
        assert b"\r\nRetry-After: 1\r\n" in refused.split(b"\r\n\r\n")[0] + b"\r\n"
        second.sendall(b"{}")
        assert responses(read_all(second))[0][0] == 200
    wait_for_body_bytes(held_server, lambda held: held == 0)
    assert held_server.body_bytes == 0


@pytest.mark.parametrize("ref", ["images/scene_01\x00.png", "/data/local-files/?d=images/scene_01%00.png"])
def test_an_image_reference_holding_a_nul_character_is_named_in_the_refusal(serve, ref):
    """The answer was "task 1: embedded null byte" (Python's words, no image named)."""
    port, _ = serve(document_root=samples_dir())
    status, answer = post(port, "/predict", {"tasks": [{"id": 1, "data": {"image": ref}}], "label_config": HOOK_CONFIG})
    assert status == 400 and "NUL" in answer["error"] and "scene_01" in answer["error"], answer


def test_an_error_repeats_a_bounded_part_of_a_clients_text_with_control_characters_escaped(serve, capsys):
    """A 1 MB image reference under a 100,000-character task id made a 1.1 MB error answer; a 60 KB
    request line came back whole in the 404 and in the log, its ESC bytes as sent (to the terminal
    showing the log). Each value a client sent is repeated up to 200 characters, escaped."""
    port, _ = serve(document_root=samples_dir(), quiet=False)
    task_id, ref = "i" * 100_000 + "\x1b[2J", "x" * 1_000_000 + "\x1b[31m"
    status, answer = post(port, "/predict", {"tasks": [{"id": task_id, "data": {"image": ref}}],
                                             "label_config": HOOK_CONFIG})
    assert status in (400, 404, 422) and len(answer["error"]) < 1000, (status, len(answer["error"]))
    assert "i" * 200 in answer["error"] and "x" * 200 in answer["error"] and "1000005 characters" in answer["error"]
    path = "/" + "y" * 60_000 + "\x1b[2J"
    (status, answer), = responses(talk(port, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode()))
    assert status == 404 and len(answer["error"]) < 500 and "\x1b" not in answer["error"], answer
    log = capsys.readouterr().err
    assert "\x1b" not in log and max(len(line) for line in log.splitlines()) < 2100, [len(x) for x in log.splitlines()]


def test_the_body_of_a_get_too_large_to_drop_closes_the_connection_unread(serve):
    """A GET's (or an unknown endpoint's) body was read and dropped up to 64 MiB each, beside the
    bodies the server counts; one over ``DRAIN_BYTES`` is not read: the answer closes the connection."""
    from qgn.serve.server import DRAIN_BYTES

    port, _ = serve()
    body = b" " * (DRAIN_BYTES + 1)
    for method, path in (("GET", "/health"), ("POST", "/nowhere")):
        raw = talk(port, b"%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                   b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                   % (method.encode(), path.encode(), len(body), body))
        assert [status for status, _ in responses(raw)] == [200 if method == "GET" else 404], raw[:300]
        assert b"\r\nConnection: close\r\n" in raw.split(b"\r\n\r\n")[0] + b"\r\n"


def test_the_body_of_a_get_counts_in_the_bytes_of_bodies_at_once(held_server):
    """A body dropped is received as any other: its bytes count while it arrives, and are given back."""
    with socket.create_connection(("127.0.0.1", held_server.server_address[1]), timeout=30) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n"
                     + b" " * 600)
        wait_for_body_bytes(held_server, lambda held: held >= 600)
        assert held_server.body_bytes == 600
        sock.sendall(b" " * 400)
        assert [status for status, _ in responses(read_all(sock))] == [200]
    wait_for_body_bytes(held_server, lambda held: held == 0)
    assert held_server.body_bytes == 0


@pytest.mark.parametrize("argv, message", [
    (["--train-iters", "100000000"], "--train-iters 100000000: at most 1000000"),
    (["--host", "999.1.1.1"], "choose another --host"),
    (["--document-root", __file__], "is a file, not a folder"),
    pytest.param(["--device", "cuda"], "--device cuda: ", marks=pytest.mark.skipif(
        __import__("torch").cuda.is_available(), reason="needs a machine without CUDA")),
])
def test_serve_options_are_refused_naming_the_option(run_cli, monkeypatch, argv, message):
    """A hostile sweep's finds: --device cuda without CUDA was an unexpected AssertionError, a fine-tune
    of 10⁸ iterations started serving (each fine-tune refused once the annotations came), a host no
    address has said "choose another --port", a file as --document-root "no such folder"."""
    import qgn.serve.server as server_module

    monkeypatch.setattr(server_module.QGNServer, "serve_forever", lambda self: None)  # a start that passes stops
    code, _, err = run_cli("serve", "--model", "demo", "--port", "0", *argv)
    assert code == 2 and message in err and "unexpected" not in err, err


@pytest.mark.parametrize("request_head, status, said", [
    (b"GET /%ff%fe HTTP/1.1\r\n", 400, "/%ff%fe is not UTF-8 once its %-escapes are decoded"),
    (b"GET /\xff\xfe HTTP/1.1\r\n", 400, "is not UTF-8 once its %-escapes are decoded"),
    (b"POST /%ff HTTP/1.1\r\nContent-Length: 2\r\n", 400, "/%ff is not UTF-8"),
    (b"GET /%68ealth HTTP/1.1\r\n", 200, None),
    (b"GET /%00 HTTP/1.1\r\n", 404, "no such endpoint GET /%00"),
])
def test_a_path_whose_escapes_are_no_utf8_gets_400_with_the_reason(serve, capsys, request_head, status, said):
    """GET /%ff%fe was a 404 'no such endpoint', as if the path had been understood; the path was
    never decoded at all (/%68ealth, which is /health, was a 404 too). Now decoded: bytes that are
    no UTF-8 are a 400 saying so, and the log holds the request's one line, no traceback."""
    port, _ = serve(quiet=False)
    (got, answer), = responses(talk(port, request_head + b"Host: x\r\nConnection: close\r\n\r\n{}"))
    assert got == status, answer
    assert said is None or said in answer["error"], answer
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and f'" {status} ' in err, err


def test_a_document_root_that_is_a_loop_of_links_is_one_line(run_cli, tmp_path, demo_model):
    """`qgn serve --document-root LOOP` said 'no such folder' (there is one: a link to itself), and
    QGNBackend raised Python's RuntimeError 'Symlink loop from …' for it."""
    from qgn.fileio import LinkLoopError

    loop = tmp_path / "root"
    loop.symlink_to("root")
    code, out, err = run_cli("serve", "--model", "demo", "--port", "0", "--document-root", loop)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert lines[0] == f"qgn serve: error: --document-root {loop}: is a loop of symbolic links, which leads nowhere " \
                       "(remove the link)", err
    with pytest.raises(LinkLoopError, match="is a loop of symbolic links"):
        QGNBackend(demo_model, "cpu", loop)
    code, out, err = run_cli("serve", "--model", "demo", "--port", "0", "--document-root", loop / "sub")
    lines = [line for line in err.splitlines() if line.strip()]  # a folder under the loop: it said "no such folder"
    assert code == 2 and len(lines) == 1, err
    assert lines[0] == f"qgn serve: error: --document-root {loop / 'sub'}: the folder {loop} on its path is a loop " \
                       "of symbolic links, which leads nowhere (remove the link)", err
