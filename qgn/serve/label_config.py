"""What a Label Studio labelling config asks an ML backend for: the BrushLabels control, the Image
it labels, the task data key of that image, and the label values (``brush_target``)."""
from __future__ import annotations

from dataclasses import dataclass

from qgn.shown import echo


class ConfigError(ValueError):
    """The labelling config cannot be served (a 400 for the client)."""


@dataclass(frozen=True)
class BrushTarget:
    """from_name: the BrushLabels control's name; to_name: the Image it labels; data_key: the task
    data key of the image (``$image`` → ``image``); labels: the label values, in config order."""

    from_name: str
    to_name: str
    data_key: str
    labels: tuple[str, ...]


def brush_target(config: str) -> BrushTarget:
    """The first BrushLabels of ``config`` (XML) and its Image; ConfigError saying what is missing."""
    if not isinstance(config, str) or not config.strip():
        raise ConfigError("no labelling config was sent")
    from qgn.formats.labelstudio import parse_labelling_config

    try:
        root = parse_labelling_config(config)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    brushes = [e for e in root.iter() if e.tag == "BrushLabels"]
    if not brushes:
        kinds = sorted({e.tag for e in root.iter() if e.tag.endswith("Labels")})
        raise ConfigError("the labelling config has no <BrushLabels> control; QGN predicts brush masks"
                          + (f" (it has {echo(', '.join(kinds))})" if kinds else ""))
    brush = brushes[0]
    from_name, to_name = brush.get("name"), brush.get("toName")
    if not from_name or not to_name:
        raise ConfigError("the <BrushLabels> control needs name and toName")
    # toName may list several objects ("photo,other"): the brush labels the first of them that is an Image
    targets = [name.strip() for name in to_name.split(",") if name.strip()]
    images = {e.get("name"): e for e in root.iter() if e.tag == "Image"}
    to_name = next((name for name in targets if name in images), None)
    if to_name is None:
        raise ConfigError(f"the <BrushLabels> labels toName={echo(brush.get('toName'), quote=True)}, but no <Image> of that name exists")
    image = images[to_name]
    value = image.get("value") or ""
    if not value.startswith("$") or len(value) < 2:
        raise ConfigError(f"<Image name={echo(to_name, quote=True)}> needs value=\"$key\" naming the task's image field")
    labels = tuple(label.get("value") for label in brush if label.tag == "Label" and label.get("value"))
    if not labels:
        raise ConfigError("the <BrushLabels> control lists no <Label value=...>")
    return BrushTarget(from_name, to_name, value[1:], labels)
