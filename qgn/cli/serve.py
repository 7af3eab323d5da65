"""`qgn serve [--model M] [--host 127.0.0.1] [--port 9090] [--document-root DIR] [--train-out DIR]`

QGN as a Label Studio ML backend (``qgn.serve``): add ``http://HOST:PORT`` as the project's model
(Settings → Model → Connect model; Label Studio needs ``ML_BLOCK_LOCAL_IP=false`` to reach a backend on
loopback). Pre-annotations are brush masks with the project's own names; ``score`` is the model's
confidence, so uncertainty sampling serves the hardest images first — where the project's model
version is the served version's (``qgn-<model>``, then ``qgn-<model>-ls<n>``): Label Studio sets it
to the backend's title at connect, and orders the other tasks at random. With the model's domain
reference beside it (``--domain-check on``, the default), an image unlike its training images gets
no pre-annotation (its annotator starts empty, as in the app) and the score 0 — until a fine-tune lets
the encoder learn (``--train-encoder auto``, the default: from 32 annotations), after which versions
have no reference and are served without the check. Binds to loopback
unless ``--host`` says otherwise. Ctrl-C stops it.
"""
from __future__ import annotations

import errno
import os
import sys

from qgn.cli.files import MODEL_HELP
from qgn.cli.main import CLIError
from qgn.cli.threads import add_threads_argument, apply_threads


def add_arguments(p) -> None:
    add_threads_argument(p)
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=9090, help="port (default 9090; 0 = any free port)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, … (default cpu)")
    p.add_argument("--document-root", metavar="DIR", default=os.environ.get("LOCAL_FILES_DOCUMENT_ROOT") or None,
                   help="read /data/local-files/?d=… images from this folder, as Label Studio's "
                        "LOCAL_FILES_DOCUMENT_ROOT (default: that variable; else fetch them from Label Studio)")
    p.add_argument("--label-studio-url", metavar="URL", help="Label Studio's address, for images given as /data/… "
                                                              "and the only place the token is sent (default: the "
                                                              "hostname /setup sends)")
    p.add_argument("--token", default=os.environ.get("LABEL_STUDIO_API_KEY") or None,
                   help="Label Studio API token for fetching images (default: LABEL_STUDIO_API_KEY, else the "
                        "token /setup sends)")
    p.add_argument("--train-out", metavar="DIR", help="turn on fine-tuning from annotations (/webhook): new model "
                                                       "versions are saved here, never over --model")
    p.add_argument("--train-every", type=int, default=10, metavar="N", help="fine-tune after N new annotations")
    p.add_argument("--train-iters", type=int, default=100, metavar="N", help="iterations of each fine-tune")
    p.add_argument("--train-encoder", choices=("auto", "frozen", "train"), default="auto",
                   help="what each fine-tune lets learn. auto (default, the app's Fine-tune dock and qgn finetune's "
                        "Automatic): the encoder too once it trains on 32 annotations, else the decoder alone; "
                        "frozen: the decoder alone (faster; every version keeps the domain check); train: the "
                        "encoder always")
    p.add_argument("--domain-check", choices=("on", "off"), default="on",
                   help="on (default): judge each image with the model's domain reference (<model>.domain.json "
                        "beside it) and send an image unlike the model's training images no pre-annotation, so "
                        "its annotator starts from an empty map, with the score 0 (uncertainty sampling serves "
                        "it early, where the project's model version is the served one's: see the README); the "
                        "log says which. A fine-tuned version carries its original's reference only if its "
                        "encoder stayed frozen: under --train-encoder auto (the default) the first fine-tune on "
                        "32 or more annotations lets the encoder learn, and from then on every version is served "
                        "without the check (unfamiliar images get predictions and their own scores again); "
                        "--train-encoder frozen keeps it. off: predictions as before; references are still kept "
                        "(a frozen-encoder version's beside it, for a restart with the check on)")


def _check_options(args) -> None:
    """Every option said wrong now, before the model loads (``--device`` resolved to a name)."""
    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port {args.port}: choose a port between 0 and 65535")
    if args.document_root and not os.path.isdir(args.document_root):  # a file, nothing, a loop of links
        from qgn.fileio import no_folder_error

        raise CLIError(str(no_folder_error(args.document_root, "--document-root")))
    if args.label_studio_url and not args.label_studio_url.startswith(("http://", "https://")):
        raise CLIError(f"--label-studio-url {args.label_studio_url}: give it as http://HOST:PORT")
    if args.train_every < 1 or args.train_iters < 1:
        raise CLIError("--train-every and --train-iters must be at least 1")
    from qgn.bounds import FINETUNE_BOUNDS

    if args.train_iters > FINETUNE_BOUNDS["iterations"][2]:  # else each fine-tune refused after the annotations came
        raise CLIError(f"--train-iters {args.train_iters}: at most {FINETUNE_BOUNDS['iterations'][2]}")
    from qgn.cli.device import resolve_device

    args.device = resolve_device(args.device)  # --device cuda without one was an unexpected AssertionError
    from qgn.serve import limits

    try:
        limits.max_tasks(), limits.max_response_bytes(), limits.request_deadline_s()
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _check_train_out(train_out_arg) -> None:
    """``--train-out``: it keeps annotations in kept-annotations/ under it: never a link leading away."""
    from pathlib import Path

    from qgn.cli.files import check_output_folder, check_output_links
    from qgn.serve import kept

    train_out = Path(train_out_arg)
    check_output_folder(train_out, "--train-out")
    # only the folder it writes into (its weights go into DIR itself, its staging folders are its
    # own new ones): a link beside it, DIR/datasets -> /elsewhere, is the user's and never written through
    check_output_links(train_out, [train_out / kept.FOLDER], option="--train-out")


def _start_backend(args, model):
    from qgn.serve.backend import QGNBackend
    from qgn.serve.kept import TrainOutInUse

    try:
        return QGNBackend(model, args.device, args.document_root, args.token, args.train_out, args.train_every,
                          args.train_iters, label_studio_url=args.label_studio_url,
                          domain_check=args.domain_check == "on", finetune_encoder=args.train_encoder)
    except TrainOutInUse as exc:
        raise CLIError(f"--train-out {args.train_out}: {exc}") from None


def _listen(backend, args):
    from qgn.serve.server import make_server

    try:
        return make_server(backend, args.host, args.port)
    except OSError as exc:
        option = "--port" if exc.errno in (errno.EADDRINUSE, errno.EACCES) else "--host"  # a name no address has
        raise CLIError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}; choose another {option}") from None


def _announce(args, backend, server) -> None:
    """What is served where (stdout), and the warnings (stderr)."""
    host, port = server.server_address[:2]
    for note in backend.resume_notes:
        print(f"qgn serve: warning: {note}", file=sys.stderr, flush=True)
    print(f"qgn serve: {backend.current.version} ({backend.current.path}) as a Label Studio ML backend on http://{host}:{port}"
          + (f", images from {backend.document_root}" if backend.document_root else "")
          + (f", fine-tuning into {args.train_out}" if args.train_out else "")
          + (", domain check on" if backend.current.reference is not None else ""), flush=True)
    if args.token and not args.label_studio_url:
        print("qgn serve: warning: a --token (or LABEL_STUDIO_API_KEY) without --label-studio-url goes to the Label "
              "Studio that calls /setup first; give --label-studio-url URL to name it", file=sys.stderr, flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"qgn serve: warning: listening on {args.host}: anyone who can reach it may use the model",
              file=sys.stderr, flush=True)


def run(args) -> int:
    apply_threads(args)
    from qgn.resources import default_model

    _check_options(args)
    model = default_model(args.model)
    if args.train_out:
        _check_train_out(args.train_out)
    backend = _start_backend(args, model)
    server = _listen(backend, args)
    _announce(args, backend, server)
    stop_on_signals()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("qgn serve: stopped", file=sys.stderr)
    finally:
        server.server_close()
        backend.stop()
    return 0


def stop_on_signals() -> None:
    """SIGTERM (``kill``, systemd, docker stop) and SIGHUP (its terminal closed) stop qgn serve as
    Ctrl-C does: killed by them, it left each image being fetched in a temporary folder. A signal
    ignored when qgn serve started stays ignored: ``nohup qgn serve`` keeps serving when its terminal
    closes."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) is not signal.SIG_IGN:
            signal.signal(getattr(signal, name), interrupt)
