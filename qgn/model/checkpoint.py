"""Model files: weights as safetensors + architecture/classes as JSON, side by side. Never pickle.

``save_model("m.safetensors", model)`` writes ``m.safetensors`` and ``m.json``; both writes are
atomic (temporary file, fsync, rename), so an interrupted save leaves the previous files intact.
"""
from __future__ import annotations

import json
import math
import os
import reprlib
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from qgn.fileio import atomic_write_together
from qgn.resources import MAX_CONFIG_BYTES

from qgn.model.encoder import SHORTCUTS, STEMS, list_encoders
from qgn.model.qgn import QGN, QGNConfig
from qgn.quadtree import NUM_LEVELS

FORMAT = "qgn-model"
FORMAT_VERSION = 1
MAX_CLASSES = 4096
RESTORE = "restore the file that came with the weights"  # the fix of a damaged model JSON
#: The safetensors types a model's tensors may be stored in: any usual float width for its
#: parameters (converted when loaded), whole numbers for its counters; never complex, 8-bit
#: floats (no finiteness check runs on them) or booleans.
FLOAT_DTYPES, INT_DTYPES = ("F32", "F16", "BF16", "F64"), ("I64", "I32")


def config_path(weights: str | os.PathLike) -> Path:
    return Path(weights).with_suffix(".json")


def save_model(path: str | os.PathLike, model: QGN, extra: dict | None = None) -> Path:
    """Save weights (+ BN buffers) to ``path`` (.safetensors) and the config to ``path``.json."""
    # both written whole before either is renamed into place: a kill while writing leaves the old
    # pair (or nothing), never new weights beside an old or missing JSON
    atomic_write_together(model_files(path, model, extra))
    return Path(path)


def model_files(path: str | os.PathLike, model: QGN, extra: dict | None = None) -> list[tuple[Path, bytes]]:
    """(path, bytes) of the two files ``save_model`` writes, for a writer that saves them together
    with others (``qgn.fileio.atomic_write_together``); the folder is made."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"model files end in .safetensors; got {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    config = model.config.to_json()
    if extra:
        config["extra"] = {**config.get("extra", {}), **extra}
    doc = {"format": FORMAT, "version": FORMAT_VERSION, "config": config}
    return [(path, save(state, metadata={"format": FORMAT})), (config_path(path), json.dumps(doc, indent=1).encode())]


def load_config(path: str | os.PathLike) -> QGNConfig:
    cpath = config_path(path)
    if not cpath.is_file():
        raise FileNotFoundError(f"model config {cpath} not found (a model is NAME.safetensors + NAME.json)")
    if cpath.stat().st_size > MAX_CONFIG_BYTES:
        raise ValueError(f"{cpath} is {cpath.stat().st_size / 1e6:.0f} MB; a model config is a few KB "
                         f"(at most {MAX_CONFIG_BYTES >> 20} MB): restore the file that came with the weights")
    try:
        doc = json.loads(cpath.read_text(encoding="utf-8-sig"))  # a BOM: an editor's, harmless
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{cpath} is not valid JSON: {exc}; {RESTORE}") from exc
    except RecursionError:
        raise ValueError(f"{cpath} is nested too deeply to be a model config; {RESTORE}") from None
    except ValueError as exc:  # json's int() of a number past sys.get_int_max_str_digits(): no setting has one
        raise ValueError(f"{cpath} holds a number of more digits than Python reads ({exc.args[0].split(':')[0]}); "
                         f"{RESTORE}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = f"format {shown(doc.get('format'))}" if isinstance(doc, dict) else f"a JSON {type(doc).__name__}"
        raise ValueError(f"{cpath} is not a QGN model config ({found}; a JSON object with \"format\": \"{FORMAT}\" "
                         f"expected): a model is NAME.safetensors with the NAME.json written beside it")
    check_version(doc.get("version", 0), cpath)
    return config_from_doc(doc, cpath)


def shown(value) -> str:
    """``value`` as a message shows it: its repr, cut short (a hostile file's value may be huge)."""
    return reprlib.repr(value)


def check_version(version, cpath: Path) -> None:
    """ValueError naming ``cpath`` and the fix for a "version" that is not a whole number this qgn reads."""
    if isinstance(version, str) and version.strip().isdigit():
        raise ValueError(f"{cpath}: \"version\" is the text {shown(version)}, not a number; write it without "
                         f"quotes (\"version\": {version.strip()})")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"{cpath}: \"version\" is {shown(version)}; expected a whole number (this qgn writes "
                         f"{FORMAT_VERSION}): {RESTORE}")
    if version > FORMAT_VERSION:
        raise ValueError(f"{cpath} is model format version {version}, newer than this qgn reads (up to "
                         f"{FORMAT_VERSION}): update qgn to load this model")


def config_from_doc(doc: dict, cpath: Path) -> QGNConfig:
    """The QGNConfig of a model JSON document, checked: ValueError naming ``cpath`` and the field
    for a missing or malformed one (no KeyError/TypeError from deep inside), and for a
    normalisation that cannot work (``mean``/``std`` not 3 finite numbers, a ``std`` of 0)."""
    if not isinstance(doc.get("config"), dict):
        raise ValueError(f"{cpath} has no \"config\" object; it is not a complete QGN model config: {RESTORE}")
    check_config_json(doc["config"], cpath)
    try:
        config = QGNConfig.from_json(doc["config"])
    except ValueError as exc:  # a class set ClassSet refuses (an ignore value that is a class id …)
        raise ValueError(f"{cpath}: bad model config ({exc}); {RESTORE}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{cpath}: bad model config ({type(exc).__name__}: {exc}); {RESTORE}") from None
    try:
        check_config_bounds(config, cpath)
    except ValueError as exc:
        raise ValueError(f"{exc}: {RESTORE}") from None
    for name in ("mean", "std"):
        values = getattr(config, name)
        ok = len(values) == 3 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
        if not ok or (name == "std" and min(values) <= 0):
            raise ValueError(f"{cpath}: \"{name}\" must be 3 finite numbers{' > 0' if name == 'std' else ''} "
                             f"(one per RGB channel); got {list(values)!r}")
    return config


def check_config_json(config: dict, cpath: Path) -> None:
    """ValueError naming ``cpath``, the field and the fix for a field of the model config that is
    unknown, missing or of the wrong kind (before anything is built from it: an unknown encoder
    is named here, not as a bare name from deep inside). Sizes are bounded by ``check_config_bounds``."""
    unknown = sorted(set(config) - set(QGNConfig.__dataclass_fields__))
    if unknown:
        raise ValueError(f"{cpath}: model config has unknown fields {shown(unknown)} (written by a newer or another "
                         "program?): update qgn, or restore the file that came with the weights")
    if "classes" not in config:
        raise ValueError(f"{cpath}: model config has no \"classes\"; {RESTORE}")
    check_classes_json(config["classes"], cpath)
    for name, choices in (("encoder", tuple(list_encoders())), ("encoder_stem", STEMS), ("encoder_shortcut", SHORTCUTS)):
        value = config.get(name, choices[-1] if name == "encoder" else choices[0])
        if not isinstance(value, str) or value not in choices:
            _bad(cpath, name, value, f"one of {', '.join(choices)}")
    units = config.get("decoder_units", [1])
    if not isinstance(units, list) or not 1 <= len(units) <= 8:
        _bad(cpath, "decoder_units", units, "a list of 1..8 whole numbers")
    for name in ("mean", "std"):
        if not isinstance(config.get(name, [0, 0, 0]), list) or len(config.get(name, [0, 0, 0])) != 3:
            _bad(cpath, name, config[name], "a list of 3 numbers, one per RGB channel")
    size = config.get("input_size")
    if size is not None and not (isinstance(size, list) and len(size) == 2 and all(_whole(v) for v in size)):
        _bad(cpath, "input_size", size, "null or [height, width] of the training images in pixels")
    if config.get("num_levels", NUM_LEVELS) != NUM_LEVELS or isinstance(config.get("num_levels"), bool):
        _bad(cpath, "num_levels", config["num_levels"], f"{NUM_LEVELS} (only stride-32 encoders are supported)")
    if not isinstance(config.get("extra", {}), dict):
        _bad(cpath, "extra", config["extra"], "an object (training metadata)")


def check_classes_json(obj, cpath: Path) -> None:
    """The model config's "classes" checked like ``check_config_json`` checks its other fields."""
    if not isinstance(obj, dict) or not isinstance(obj.get("names"), list) or not obj["names"]:
        _bad(cpath, "classes", obj, "an object with a list of \"names\"")
    names = obj["names"]
    if len(names) > MAX_CLASSES or not all(isinstance(n, str) for n in names):
        _bad(cpath, "classes.names", names, f"a list of at most {MAX_CLASSES} texts")
    palette = obj.get("palette", [])
    if not isinstance(palette, list) or not all(_rgb(c) for c in palette):
        _bad(cpath, "classes.palette", palette, "a list of [r, g, b] colours (whole numbers in 0..255)")
    if not _rgb(obj.get("ignore_color", [0, 0, 0])):
        _bad(cpath, "classes.ignore_color", obj["ignore_color"], "an [r, g, b] colour (whole numbers in 0..255)")
    ignore = obj.get("ignore_index")
    if ignore is not None and not (_whole(ignore) and 0 <= ignore <= 65535):
        _bad(cpath, "classes.ignore_index", ignore, "null or a whole number in 0..65535")


def _bad(cpath: Path, field: str, value, expected: str):
    raise ValueError(f"{cpath}: model config \"{field}\" is {shown(value)}; expected {expected}: {RESTORE}")


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _rgb(value) -> bool:
    return isinstance(value, list) and len(value) == 3 and all(_whole(c) and 0 <= c <= 255 for c in value)


def check_config_bounds(config: QGNConfig, cpath: Path) -> None:
    """ValueError naming ``cpath`` and the field when a size the config claims is beyond any model
    this code builds (a hostile ``encoder_width: 64`` would allocate gigabytes before the weights'
    shapes could disagree)."""
    from qgn.bounds import check_setting

    for name, bound in (("encoder_width", ("float", 1 / 64, 8.0)), ("decoder_width", ("float", 1 / 64, 8.0)),
                        ("input_scale", ("float", 1 / 32, 8.0))):
        check_setting(name, getattr(config, name), bound, f"{cpath}: model config")
    units = config.decoder_units
    if not isinstance(units, tuple) or not 1 <= len(units) <= 8:
        raise ValueError(f"{cpath}: model config decoder_units is {list(units)!r}; expected 1..8 whole numbers")
    for unit in units:
        check_setting("decoder_units", unit, ("int", 0, 16), f"{cpath}: model config")
    if config.input_size is not None:
        for side in config.input_size:
            check_setting("input_size", side, ("int", 1, 1 << 16), f"{cpath}: model config")
    if config.classes.num_classes > MAX_CLASSES:
        raise ValueError(f"{cpath}: model config has {config.classes.num_classes} classes; at most {MAX_CLASSES} are "
                         "supported")


def check_weights_match(path: Path, config: QGNConfig) -> None:
    """Compare the tensors a model of ``config`` has with those the safetensors header of ``path``
    lists (names and shapes), before either is allocated: ValueError when they differ."""
    from safetensors import safe_open

    with torch.device("meta"):
        model_state = QGN(config).state_dict()
    shapes = {k: tuple(v.shape) for k, v in model_state.items()}
    try:
        with safe_open(str(path), "pt") as f:
            stored = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable safetensors file: {exc}") from None
    missing = sorted(set(shapes) - set(stored))
    unexpected = sorted(set(stored) - set(shapes))
    if missing or unexpected:
        raise ValueError(f"{path} does not match its config: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name, shape in shapes.items():
        if stored[name] != shape:
            raise ValueError(f"{path} does not match its config: {name} is {list(stored[name])} in the file, "
                             f"{list(shape)} in the model the config describes")
    for name, tensor in model_state.items():
        wanted = FLOAT_DTYPES if tensor.is_floating_point() else INT_DTYPES
        if dtypes[name] not in wanted:
            raise ValueError(f"{path}: weights {name!r} are of type {dtypes[name]}; a model's are "
                             f"{' or '.join(wanted)} (save them with save_model, or convert them to float32)")


def check_finite(state: dict, path: Path) -> None:
    """ValueError naming the first tensor of ``state`` holding NaN or infinity: such a model
    predicts nonsense with no other sign of trouble."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{path}: weights {name!r} hold NaN or infinite values; this model is broken "
                             "(retrain, or use the model it was fine-tuned from)")


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> QGN:
    """Rebuild a QGN from ``path`` (.safetensors) and its .json; in eval mode on ``device``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model weights {path} not found")
    config = load_config(path)
    check_weights_match(path, config)  # shapes from the headers, before anything is allocated
    model = QGN(config)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path} is not a readable safetensors file: {exc}") from exc
    check_finite(state, path)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch
        raise ValueError(f"{path} does not match its config: {str(exc).splitlines()[1].strip()}") from exc
    if missing or unexpected:
        raise ValueError(
            f"{path} does not match its config: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    if torch.device(device).type == "cpu":
        from qgn.sparse.fused_conv import check_fused_kernels

        check_fused_kernels()  # the sparse kernels check themselves now, not inside the first level's time
    return model.to(device).eval()
