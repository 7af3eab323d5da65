"""Where the shipped resources live: demo model, sample images, palettes, icons.

The folder ``resources/`` sits at the repository root and is shipped inside the wheel as the
data-only package ``qgn_resources`` (``setup.py`` maps it). ``resources_dir()`` looks, in order:

1. ``QGN_RESOURCES`` (an explicit override; used as given, even if it does not exist);
2. the installed package ``qgn_resources`` (a wheel; an editable install maps it to the checkout);
3. ``resources/`` next to the ``qgn`` package: a plain source checkout, or a PyInstaller bundle
   (whose spec puts the folder there).
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

RESOURCES_PACKAGE = "qgn_resources"


def resources_dir() -> Path:
    """The resources folder (see the module docstring for where it is looked for)."""
    env = os.environ.get("QGN_RESOURCES")
    if env:
        return Path(env)
    installed = installed_resources_dir()
    if installed is not None:
        return installed
    return Path(__file__).resolve().parents[1] / "resources"


def installed_resources_dir() -> Path | None:
    """The folder of the installed ``qgn_resources`` package, or None when it is not installed."""
    try:
        spec = importlib.util.find_spec(RESOURCES_PACKAGE)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    for location in locations:
        if Path(location).is_dir():
            return Path(location)
    return None


def demo_model_path() -> Path:
    """The bundled demo model (safetensors; its config is the .json beside it)."""
    return resources_dir() / "models" / "demo.safetensors"


def samples_dir() -> Path:
    """Generated sample images (``images/``) and their ground truth (``labels/``)."""
    return resources_dir() / "samples"


def icons_dir() -> Path:
    """The app icon: ``qgn-studio.svg`` and ``qgn-studio-<N>.png`` for N in ``ICON_SIZES``."""
    return resources_dir() / "icons"


ICON_SIZES: tuple[int, ...] = (16, 32, 48, 64, 128, 256, 512)


def app_icon_paths() -> list[Path]:
    """The app icon's PNG files that exist, smallest first (empty when the icons are missing)."""
    return [p for p in (icons_dir() / f"qgn-studio-{n}.png" for n in ICON_SIZES) if p.is_file()]


def palettes_dir() -> Path:
    """Class sets of the known datasets as ``classes.txt`` files (``qgn convert --classes FILE``)."""
    return resources_dir() / "palettes"


def models_dir() -> Path:
    """The bundled models: ``NAME.safetensors`` + ``NAME.json`` each."""
    return resources_dir() / "models"


DEFAULT_MODEL_NAME = "demo"


@dataclass(frozen=True)
class BundledModel:
    """A model shipped in ``resources/models``, described from its JSON (no weights loaded).

    trained_on: "camvid/train", "synthetic/train", … (from the training settings stored at
                training time), or "" when unknown.
    evaluation: what ``qgn eval --record`` measured and stored in the JSON:
                {"data", "split", "image_size", "modes": {mode: {"acc", "miou", …}}}, or {}.
    """

    name: str
    path: Path
    classes: object  # qgn.classes.ClassSet
    size_bytes: int
    trained_on: str
    iterations: int | None
    evaluation: dict

    @property
    def miou(self) -> float | None:
        """The recorded mIoU of the All scheme (fraction), if any."""
        mode = self.evaluation.get("modes", {}).get("all") or next(iter(self.evaluation.get("modes", {}).values()), None)
        return None if mode is None else mode.get("miou")


MAX_CONFIG_BYTES = 16 << 20  # a model's JSON (config + training metadata) is a few KB (``qgn.model.checkpoint``)


def bundled_models(problems: list[str] | None = None) -> list[BundledModel]:
    """Every bundled model whose JSON reads, sorted by name (the demo model first).

    Reads the JSON files alone (their classes and training record), never torch: the app lists
    the models in its menu before anything heavy is imported. Loading a model checks it fully
    (``qgn.model.checkpoint.load_config``). Each JSON is read by ``qgn.fileio.read_json``: a named
    pipe there never waits, a huge file is not read whole. ``problems``: where given, why each model
    left out was (one line each; ``qgn models`` says them)."""
    from qgn.classes import ClassSet
    from qgn.fileio import read_json

    found = []
    for weights in sorted(models_dir().glob("*.safetensors")) if models_dir().is_dir() else []:
        try:
            doc = read_json(weights.with_suffix(".json"), "model config", MAX_CONFIG_BYTES)
            problem = _config_problem(doc)
            if problem is not None:  # Python's words ('NoneType' object is not subscriptable) said nothing
                raise TypeError(problem)
            config = doc["config"]
            try:
                classes = ClassSet.from_json(config["classes"])
            except (TypeError, AttributeError) as exc:  # a palette or ignore colour of the wrong kind
                raise TypeError(f"its 'config' 'classes' cannot be read: {exc}") from None
            extra = config.get("extra") or {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            if problems is not None:
                from qgn.shown import path_text

                shown = path_text(weights.with_suffix(".json"))
                if isinstance(exc, OSError):
                    said = f"{shown}: {exc.strerror or exc}"
                elif isinstance(exc, ValueError) and str(weights.with_suffix(".json")) in str(exc):
                    said = str(exc)  # read_json's words name the file
                else:
                    said = f"{shown} is not a QGN model config ({'no ' + str(exc) + ' entry' if isinstance(exc, KeyError) else exc})"
                problems.append(said)
            continue
        train = extra.get("train") or {}
        trained_on = f"{train.get('dataset', '')}/{train.get('split', '')}" if train.get("dataset") else ""
        found.append(BundledModel(weights.stem, weights, classes, weights.stat().st_size, trained_on,
                                  extra.get("iteration"), extra.get("evaluation") or {}))
    return sorted(found, key=lambda m: (m.name != DEFAULT_MODEL_NAME, m.name))


def _config_problem(doc) -> str | None:
    """What is of the wrong shape in a bundled model's JSON document, in words (naming the part,
    what it holds and what belongs there), or None: every part ``bundled_models``, ``qgn models``
    and the app's model menu read (the classes, the training and evaluation records), checked here
    at once, so that no reader of a ``BundledModel`` meets a part of the wrong kind."""
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        return (f"it holds {_json_kind(doc)}, where a JSON object with a 'config' object belongs"
                if not isinstance(doc, dict) else f"its 'config' is {_json_kind(doc.get('config'))}, where an object "
                "belongs")
    config = doc["config"]
    if "classes" not in config:
        return "its 'config' has no 'classes'"
    classes = config["classes"]
    if not isinstance(classes, dict) or not isinstance(classes.get("names"), list):
        return f"its 'config' 'classes' is {_json_kind(classes)}, where an object with a list of 'names' belongs"
    names = classes["names"]
    if not names:
        return "its 'config' 'classes' 'names' is an empty list, where the class names belong"
    odd = next((name for name in names if not isinstance(name, str)), "")
    if not isinstance(odd, str):
        return f"its 'config' 'classes' 'names' holds {_json_kind(odd)}, where class names (texts) belong"
    from qgn.classes import is_json_rgb

    palette = classes.get("palette", [])
    if not isinstance(palette, list) or not all(is_json_rgb(colour) for colour in palette):
        return (f"its 'config' 'classes' 'palette' is {_json_kind(palette)}, where a list of [r, g, b] colours "
                "(whole numbers in 0..255) belongs")
    if not is_json_rgb(classes.get("ignore_color", [0, 0, 0])):
        return (f"its 'config' 'classes' 'ignore_color' is {_json_kind(classes['ignore_color'])}, where an [r, g, b] "
                "colour (whole numbers in 0..255) belongs")
    ignore = classes.get("ignore_index")
    if ignore is not None and (isinstance(ignore, bool) or not isinstance(ignore, int)):
        return f"its 'config' 'classes' 'ignore_index' is {_json_kind(ignore)}, where null or a whole number belongs"
    extra = config.get("extra")
    if extra is None:
        return None
    if not isinstance(extra, dict):
        return f"its 'config' 'extra' is {_json_kind(extra)}, where an object belongs"
    for part in ("train", "evaluation"):
        if extra.get(part) is not None and not isinstance(extra[part], dict):
            return f"its 'config' 'extra' '{part}' is {_json_kind(extra[part])}, where an object belongs"
    iteration = extra.get("iteration")
    if iteration is not None and (isinstance(iteration, bool) or not isinstance(iteration, int)):
        return f"its 'config' 'extra' 'iteration' is {_json_kind(iteration)}, where a whole number belongs"
    evaluation = extra.get("evaluation") or {}
    if "modes" not in evaluation:
        return None
    modes = evaluation["modes"]
    if not isinstance(modes, dict):
        return f"its 'config' 'extra' 'evaluation' 'modes' is {_json_kind(modes)}, where an object of modes belongs"
    for name, mode in modes.items():
        if not isinstance(mode, dict):
            return f"its 'config' 'extra' 'evaluation' 'modes' '{name}' is {_json_kind(mode)}, where an object belongs"
        miou = mode.get("miou")
        if miou is not None and (isinstance(miou, bool) or not isinstance(miou, (int, float))):
            return (f"its 'config' 'extra' 'evaluation' 'modes' '{name}' 'miou' is {_json_kind(miou)}, where a number "
                    "(or null) belongs")
    return None


def _json_kind(value) -> str:
    """What a JSON value is, in words (``bundled_models``' messages)."""
    if value is None:
        return "null"
    kinds = ((bool, "true or false"), (dict, "an object"), (list, "a list"), (str, "a string"), ((int, float), "a number"))
    return next((what for kind, what in kinds if isinstance(value, kind)), type(value).__name__)


def bundled_model_path(name: str) -> Path | None:
    """``resources/models/NAME.safetensors`` when it exists, else None."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    candidate = models_dir() / f"{name}.safetensors"
    return candidate if candidate.is_file() else None


def default_model(path: str | os.PathLike | None, option: str = "--model") -> Path:
    """The model file that ``--model`` names: a bundled model's name (``demo``, ``camvid``), a
    ``.safetensors`` file, or a training run's folder (its ``final.safetensors``, else
    ``last.safetensors``); None means the bundled demo model. FileNotFoundError with the bundled
    names otherwise; ``option``: what the caller calls the path in a message ("" for none)."""
    if path is None or str(path) == "":
        chosen = bundled_model_path(DEFAULT_MODEL_NAME)
        if chosen is None:
            raise FileNotFoundError(f"the bundled demo model is missing from {models_dir()} "
                                    "(train it with `qgn train --preset demo`)")
        return chosen
    given = Path(path)
    if given.is_file():
        return given
    if given.is_dir():
        for name in ("final.safetensors", "last.safetensors"):
            if (given / name).is_file():
                return given / name
        raise FileNotFoundError(f"model folder {given} holds no final.safetensors or last.safetensors")
    from .fileio import missing_file_error, not_a_file_error, special_kind

    kind = special_kind(given) if given.exists() else None
    if kind is not None:  # /dev/zero, a pipe: "not found" said nothing of what it is
        raise not_a_file_error(given, kind)
    bundled = bundled_model_path(str(path))
    if bundled is not None:
        return bundled
    if given.is_symlink():  # a link to a moved model, a loop of links
        raise missing_file_error(given, f"{option} " if option else "")
    names = ", ".join(m.name for m in bundled_models()) or "none"
    raise FileNotFoundError(f"model {path} not found: give a .safetensors file, a training run's folder, "
                            f"or a bundled model's name ({names}; `qgn models` lists them)")
