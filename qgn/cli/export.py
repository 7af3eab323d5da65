"""`qgn export`: quadtree labels → the formats other tools read.

Three forms:

* ``qgn export IN.qgt --png OUT.png`` / ``qgn export DIR --png OUTDIR``: the label map as PNG with
  the exact original values and size (indexed-palette PNG, colours from the file's classes; 16-bit
  grayscale for values > 255). In the folder form every .qgt under DIR (recursive) becomes
  OUTDIR/<same relative path>.png.
* ``qgn export IN.qgt|DIR --format NAME[,NAME…] --out OUT``: any format of
  ``qgn.formats.FORMATS`` (qgt, png, ids, cvat, voc, cityscapes, camvid, coco, labelme, labelstudio,
  fiftyone, levels, json). One format writes into OUT
  (the folder form mirrors DIR's subfolders under OUT); several write into OUT/<format>/. Files
  without stored classes get generic names ("class 0" …) and the default palette.
* ``qgn export --project DIR --out OUT [--formats qgt,png,…] [--only-done]``: every saved
  annotation of a QGN Studio project into OUT/<format>/<image key>.*, one progress line per image.

Every form with more than one file prints ``[i/n] file`` per file exported, ending with the time
left (``· about 1 min 05 s left``) once the batch has run a second.

``--split NAME`` (with the ``cityscapes`` format, either form): the split folder of the Cityscapes
tree, ``gtFine/NAME/`` and ``leftImg8bit/NAME/``; default ``train``.
"""
from __future__ import annotations

import sys
from pathlib import Path

from qgn.cli.files import Failures, check_output_folder, check_output_links, check_outputs, collect_files
from qgn.cli.main import CLIError
from qgn.fileio import protected_inputs
from qgn.formats import check_text_names
from qgn.formats import UnexportableNameError
from qgn.formats.base import FolderRefusedError
from qgn.progress import TimeLeft
from qgn.shown import one_line
from qgn.fileio import no_input_error

DEFAULT_PROJECT_FORMATS = "qgt,png"


def export_png(label, classes, out: Path) -> None:
    """The label map (H, W) as PNG: exact values (ignore pixels keep the ignore value) and size."""
    from qgn.quadtree.label_io import write_label_png

    write_label_png(out, label, classes)


# name -> (file suffix, function, help): the single-output options of the first form.
EXPORTERS = {
    "png": (".png", export_png, "label map PNG (exact original values and size)"),
}


def add_arguments(p) -> None:
    from qgn.formats import FORMATS

    names = ", ".join(f"{n} ({f.description})" for n, f in FORMATS.items())
    p.add_argument("src", metavar="IN|DIR", nargs="?", help="a .qgt file, or a folder of them (recursive)")
    for name, (suffix, _, help_text) in EXPORTERS.items():
        p.add_argument(f"--{name}", metavar="OUT", help=f"{help_text}: a file, or a folder for the folder form")
    p.add_argument("--format", metavar="NAME[,NAME]", help=f"export IN|DIR in these formats into --out: {names}")
    p.add_argument("--project", metavar="DIR", help="export every saved annotation of this QGN Studio project")
    p.add_argument("--formats", metavar="NAME[,NAME]", default=None,
                   help=f"formats of the --project export (default {DEFAULT_PROJECT_FORMATS})")
    p.add_argument("--only-done", action="store_true", help="with --project: only images marked done")
    p.add_argument("--include-images", choices=("none", "copy", "link"), default="none",
                   help="with --project: put the image files into the exports that reference them (labelme beside "
                        "each JSON with imageData, COCO in images/default/, CVAT in JPEGImages/, FiftyOne in data/); default none: labelme's imagePath "
                        "leads to the image where it is")
    p.add_argument("--split", metavar="NAME", help="with the cityscapes format: the split folder, gtFine/NAME/ and "
                                                   "leftImg8bit/NAME/ (default train, what torchvision's and qgn's "
                                                   "Cityscapes readers open; val or test for held-out labels)")
    p.add_argument("--out", metavar="DIR", help="output folder of --format and --project")
    p.add_argument("--images", metavar="DIR", help="with --format: where the .qgt files' images are, found by the "
                                                   ".qgt's path under the exported folder (sub/f0.qgt: DIR/sub/f0.png), "
                                                   "else by file stem where no other .qgt has it (default: beside each "
                                                   ".qgt); formats that reference or copy images (labelstudio, camvid, "
                                                   "coco …) need them")


def _format_names(text: str, option: str) -> list[str]:
    from qgn.formats import FORMATS

    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise CLIError(f"{option}: unknown format(s) {', '.join(unknown) or repr(text)}; choose from {', '.join(FORMATS)}")
    return names


def _split(args, names: list[str]) -> str | None:
    """The --split NAME for the ``names`` formats (None without the option); CLIError when no
    format takes a split or NAME is not one plain folder name."""
    from qgn.formats import check_split

    if args.split is None:
        return None
    if "cityscapes" not in names:
        raise CLIError("--split names the Cityscapes split folder: use it with --format cityscapes "
                       "(or --formats …,cityscapes with --project)")
    try:
        return check_split(args.split)
    except ValueError as exc:
        raise CLIError(f"--{exc}") from None


def qgt_fix(src: Path, images: str | None, names=None, out=None, split: str | None = None) -> str:
    """What an export of the loose .qgt ``src`` (a file or a folder of them) refused for a class name no
    importer reads back says to do: no project to rename it in, and QGN Studio saves its edits into a
    project, never back into a .qgt; the label values written as PNG and converted back under a
    classes.txt of new names make the same .qgt files with those names. Three commands, each in
    backticks, to run as they stand (FILE: that classes.txt); a file keeps its stem throughout, so
    that its image is found by it (``names``/``out``/``split``: the export refused, said again for the new files)."""
    import shlex

    q = shlex.quote
    folder = Path(src).is_dir()
    if folder:
        masks, new = "MASKS", "NEW"
        png, again = masks, new
    else:
        stem = Path(src).stem
        masks, new = "MASKS", "NEW"
        png, again = f"{masks}/{stem}.png", f"{new}/{stem}.qgt"
    photos = images if images else shown(src if folder else Path(src).parent)
    target = (f" --format {q(','.join(names))} --out {q(shown(out))}" if names and out else " --format NAME --out DIR")
    target += f" --split {q(split)}" if split else ""
    return (f"write the .qgt again with the class renamed: `qgn export {q(shown(src))} --png {q(png)}`, "
            f"then `qgn convert {masks} {new} --classes FILE` with FILE a classes.txt of the new names (`name R G B` "
            f"lines, then `ignore: V`), then `qgn export {q(again)}{target} --images {q(photos)}`")


def run(args) -> int:
    if args.project:
        return _run_project(args)
    wanted, names, split = _checked_request(args)
    src = Path(args.src)
    jobs, relative_dirs, root = _file_jobs(src, names, wanted, args.out)
    if args.images and not Path(args.images).is_dir():
        raise CLIError(f"--images {args.images}: no such folder")
    if names:  # a folder link under --out leading outside it: refused before anything is read or written
        _check_format_out(args.out, src, names, relative_dirs)
    if any(whole_dataset_only(n) for n in names) and src.is_dir():
        if wanted:
            raise CLIError("a whole-dataset --format and --png cannot be combined; run them one at a time")
        check_outputs([path for path, _ in jobs], [(out, src) for out in dataset_outputs(names, Path(args.out))])
        with protected_inputs(_inputs(jobs, args.images, root), "the files being exported and their images"):
            return _export_folder_dataset(src, [f for f, _ in jobs], names, Path(args.out), args.images, split,
                                          qgt_fix(src, args.images, names, args.out, split))
    return _export_files(args, src, jobs, relative_dirs, root, names, split, wanted)


def _checked_request(args) -> tuple[list, list[str], str | None]:
    """The file forms' outputs asked for: ([(exporter name, OUT)], --format's names, the split);
    CLIError for a request that names none, or one that mixes in the project form's options."""
    if args.formats or args.only_done or args.include_images != "none":
        raise CLIError("--formats, --only-done and --include-images go with --project DIR; for files use --format NAME")
    wanted = [(name, Path(getattr(args, name))) for name in EXPORTERS if getattr(args, name)]
    if not wanted and not args.format:
        raise CLIError("choose an output: " + ", ".join(f"--{name} OUT" for name in EXPORTERS)
                       + ", --format NAME --out DIR, or --project DIR --out DIR")
    if args.src is None:
        raise CLIError("name a .qgt file or a folder of them to export (or use --project DIR)")
    names = _format_names(args.format, "--format") if args.format else []
    split = _split(args, names)
    if names and not args.out:
        raise CLIError("--format needs --out DIR (the output folder)")
    return wanted, names, split


def _file_jobs(src: Path, names: list[str], wanted: list, out_dir) -> tuple[list, list[Path], Path]:
    """([(a .qgt file, [(exporter name, its output)])], each file's folder relative to ``src``, the
    folder they are relative to) for ``src``, a file or a folder of them; the outputs checked first."""
    if src.is_dir():
        check_not_a_project(src, names or [name for name, _ in wanted], out_dir or wanted[0][1])
        files = collect_files([str(src)], (".qgt",), ".qgt files")
        for _, out in wanted:
            if out.exists() and not out.is_dir():
                raise CLIError(f"{out} exists and is not a folder (exporting a folder needs an output folder)")
        jobs = [(f, [(n, out / f.relative_to(src).with_suffix(EXPORTERS[n][0])) for n, out in wanted]) for f in files]
        relative_dirs = [f.parent.relative_to(src) for f in files]
        for name, out in wanted:  # before anything is written: it mirrors DIR's subfolders under OUT
            check_output_folder(out, f"--{name}")
            check_output_links(out, [out / rel for rel in sorted(set(relative_dirs))], f"--{name}")
        return jobs, relative_dirs, src
    if src.is_file():
        jobs = [(src, [(n, out / f"{src.stem}{EXPORTERS[n][0]}" if out.is_dir() else out) for n, out in wanted])]
        return jobs, [Path()], src.parent
    raise no_input_error(src)


def _check_format_out(out, src: Path, names: list[str], relative_dirs: list[Path]) -> None:
    """``--out`` of ``--format`` (as typed): a folder (or none yet) with no link under it leading outside it."""
    from qgn.formats import check_export_links

    if Path(out).exists() and not Path(out).is_dir():
        raise CLIError(f"--out {out} exists and is not a folder")
    check_output_folder(Path(out))  # a folder export writes its one JSON at the end

    dataset = any(whole_dataset_only(n) for n in names) and src.is_dir()
    check_export_links(Path(out), [Path(out) / rel / (name if len(names) > 1 else "")
                                   for rel in ([Path()] if dataset else sorted(set(relative_dirs)))
                                   for name in names])


def _export_files(args, src: Path, jobs: list, relative_dirs: list[Path], root: Path, names: list[str],
                  split: str | None, wanted: list) -> int:
    """Export each of ``jobs`` on its own (one bad file is reported and the rest go on); the exit code."""
    planned = [(out, path) for path, targets in jobs for _, out in targets]
    # named as a folder's dataset export names them where a format lists names (cvat, voc): -2 …
    stems = item_names(src, [path for path, _ in jobs], flat=False) if any(n in LISTED_FORMATS for n in names) \
        else [path.stem for path, _ in jobs]
    if names:
        planned += [(out, path) for (path, _), rel, stem in zip(jobs, relative_dirs, stems)
                    for out in format_outputs(names, Path(args.out) / rel, stem)]
    check_outputs([path for path, _ in jobs], planned)  # refused before anything is written
    failures = Failures("export", len(jobs))
    refused = _export_each(args, src, jobs, relative_dirs, root, names, split, stems, planned, failures)
    for (rel, _), again in refused.items():
        if again:
            folder = "" if rel is None else f" bound for {shown(Path(args.out) / rel if args.out else rel)}"
            print(f"qgn export: {len(again)} more file(s){folder} refused the same way (see above): "
                  + ", ".join(shown(p) for p in again[:5]) + (" …" if len(again) > 5 else ""),
                  file=sys.stderr, flush=True)
    exported = len(jobs) - len(failures)
    outputs = [f"{n} ({out})" for n, out in wanted] + ([f"{', '.join(names)} ({args.out})"] if names else [])
    if exported or len(jobs) > 1:  # a single file that failed has said so in its one line
        of = f" of {len(jobs)}" if exported < len(jobs) else ""
        print(f"exported {exported}{of} file(s) to " + ", ".join(outputs))
    return failures.code()


def _export_each(args, src: Path, jobs: list, relative_dirs: list[Path], root: Path, names: list[str],
                 split: str | None, stems: list[str], planned: list, failures: Failures) -> dict:
    """``_export_files``' loop, reporting into ``failures``; {(OUT/<rel>, the refusal): the files
    refused so after the first} (another export's class list there; rel None: a class name no
    importer reads back, wherever it goes): each file is still tried - whether it is refused
    depends on its own classes - and said once."""
    time_left = TimeLeft()
    refused: dict[tuple[Path | None, str], list[Path]] = {}
    fix = qgt_fix(src, args.images, names, args.out)
    walks: dict = {}  # each output folder's list check walks it once this run, not once per file
    clashing = clashing_stems(path for path, _ in jobs)
    planned_in = planned_items(Path(args.out), relative_dirs, names, [out for out, _ in planned]) if names else {}
    with protected_inputs(_inputs(jobs, args.images, root), "the files being exported and their images"):
        for i, ((path, targets), rel, stem) in enumerate(zip(jobs, relative_dirs, stems), start=1):
            try:  # one bad file is reported and the rest go on
                _export_file(path, targets, names, Path(args.out) / rel if names else None, args.images, split,
                             stem, fix, root, clashing, planned_in.get(rel), walks)
            except (FolderRefusedError, UnexportableNameError) as exc:  # its classes refused: the others go on
                key = (rel if isinstance(exc, FolderRefusedError) else None, str(exc))
                if key in refused:
                    refused[key].append(path)
                    failures.report(path, exc, quiet=True)  # named in one line at the end
                else:
                    refused[key] = []
                    failures.report(path, exc if key[0] is not None else f"{shown(path)}: {exc}")
                continue
            except (ValueError, OSError) as exc:
                failures.report(path, exc)
                continue
            if len(jobs) > 1:  # a folder: one line per file, as the other forms
                print(f"[{i}/{len(jobs)}] {shown(path)}{time_left.suffix(i, len(jobs))}", flush=True)
    return refused


def planned_items(out: Path, relative_dirs: list[Path], names: list[str], outputs: list[Path]) -> dict[Path, list[str]]:
    """{the subfolder ``rel`` of a folder's export into ``out``: every PNG of ``outputs`` (all the files
    the export writes) in its png folder (out/rel, or out/rel/png among several formats) and beneath
    it, named without .png under that folder (``sub/stem`` for out/rel/sub/stem.png)}: the import of
    out/rel reads the PNGs beneath it too, and the export's own are not another export's
    (``PngWriter.check_items_folder``)."""
    inner = Path("png") if len(names) > 1 else Path()
    folders = {out / rel / inner: rel for rel in relative_dirs}
    planned: dict[Path, list[str]] = {rel: [] for rel in relative_dirs}
    for path in outputs:
        if path.suffix.lower() == ".png":
            for folder in path.parents:  # each png folder the file lies in, at any depth
                if folder in folders:
                    planned[folders[folder]].append(path.relative_to(folder).with_suffix("").as_posix())
    return planned


def check_not_a_project(src: Path, formats: list[str], out) -> None:
    """CLIError where the folder ``src``, named as a folder of .qgt files, is a QGN Studio project's
    (its project.json): exported so, its .qgt files went out as loose files (its images not found,
    named after its annotations folder, exit 0); ``qgn export --project`` exports the project. The
    command is said as it runs (``formats``, ``out``: the export asked for); a project's
    annotations folder, named itself, still exports its .qgt files alone."""
    import shlex

    from qgn.project_file import PROJECT_FILE, marked_as_project

    marker = src / PROJECT_FILE
    if not marker.is_file() or not marked_as_project(marker):
        return
    q = shlex.quote
    raise CLIError(f"{shown(src)} is a QGN Studio project (it holds {PROJECT_FILE}), not a folder of .qgt files: export "
                   f"it with `qgn export --project {q(shown(src))} --formats {q(','.join(formats))} --out "
                   f"{q(shown(out))}` (its images and class names go with it); to export its .qgt files alone, name "
                   "its annotations folder")


def format_outputs(names: list[str], out_dir: Path, stem: str, levels: int = 16) -> list[Path]:
    """The files ``_export_file`` writes for one .qgt in ``names`` formats (per-image files only:
    a CVAT folder's shared labelmap.txt and default.txt are meant to be shared)."""
    from qgn.formats import FORMATS
    from qgn.formats.base import listable_name

    paths = []
    for name in names:
        folder = out_dir if len(names) == 1 else out_dir / name
        if name == "levels":
            paths += [folder / f"{stem}_L{level}.png" for level in range(levels)]
        elif name in ("cvat", "voc"):  # named as its image list holds it: a line break is a space
            paths.append(folder / "SegmentationClass" / f"{listable_name(stem)}.png")
        else:
            paths.append(folder / f"{stem}{FORMATS[name].suffix}")
    return paths


def dataset_outputs(names: list[str], out: Path, folder_each: bool = False) -> list[Path]:
    """What a whole-dataset export of ``names`` into ``out`` (``out/<name>/`` each with several names,
    or always with ``folder_each``, as a project's export) is checked by before it writes
    (``check_outputs``): each format's folder, and COCO's annotations file (an ``annotations/``
    folder inside the folder named)."""
    from qgn.formats.coco import ANNOTATION_FILE

    paths = []
    for name in names:
        folder = out / name if folder_each or len(names) > 1 else out
        paths += [folder, folder / ANNOTATION_FILE] if name == "coco" else [folder]
    return paths


def whole_dataset_only(name: str) -> bool:
    """Whether format ``name`` only writes whole datasets (one COCO / Label Studio JSON, …)."""
    from qgn.formats import FORMATS

    return FORMATS[name].write is None


def qgt_image(path: Path, images: str | None, root: Path | None = None, clashing=frozenset()) -> Path | None:
    """The image a .qgt labels: in ``images`` at the .qgt's path under ``root`` (the exported folder:
    ``root/sub/f0.qgt`` -> ``images/sub/f0.png``), else by stem alone in ``images`` unless another
    exported file has the same stem (``clashing``: which of them it is the photo of is unknown -
    AmbiguousImageError rather than another folder's photo), else beside the .qgt; None if none."""
    from qgn.fileio import resolved, resolved_or_none
    from qgn.formats.source import AmbiguousImageError, find_image

    if not images:
        return find_image(path.stem, path.parent)
    rel = path.parent.relative_to(root) if root is not None else Path()
    under = Path(images) / rel
    inside = resolved_or_none(under) if rel != Path() else None  # a link loop is no folder to look in
    if inside is not None and inside.is_relative_to(resolved(images)):  # no link leading out
        found = find_image(path.stem, under)
        if found is not None:
            return found
    by_stem = find_image(path.stem, Path(images))
    if by_stem is not None and not (rel != Path() and path.stem in clashing):
        return by_stem
    beside = find_image(path.stem, path.parent)
    if beside is None and by_stem is not None:
        raise AmbiguousImageError(
            f"{shown(by_stem)} could be the image of several exported files named {path.stem!r}; put the "
            f"image of {shown(path)} at {shown(Path(images) / rel / by_stem.name)} (--images is looked up by "
            "the .qgt's path under the exported folder first)")
    return beside


def clashing_stems(files) -> frozenset:
    """The stems several of ``files`` share: found by stem alone in --images, an image could be another's."""
    from collections import Counter

    return frozenset(stem for stem, n in Counter(Path(f).stem for f in files).items() if n > 1)


def _image_or_none(path: Path, images: str | None, root: Path | None = None, clashing=frozenset()) -> Path | None:
    """``qgt_image``, None where it is ambiguous (that file's own export reports it)."""
    from qgn.formats.source import AmbiguousImageError

    try:
        return qgt_image(path, images, root, clashing)
    except AmbiguousImageError:
        return None


def _inputs(jobs, images: str | None, root: Path | None = None) -> list[Path]:
    """The .qgt files of ``jobs`` and the images beside them or in ``images``: what an export
    reads, which no file it writes may replace (an image copy is named by data, not planned)."""
    from qgn.formats.source import AmbiguousImageError, glob_escape

    inputs = [path for path, _ in jobs]
    clashing = clashing_stems(path for path, _ in jobs)
    for path, _ in jobs:
        try:
            inputs.append(qgt_image(path, images, root, clashing))
        except AmbiguousImageError:  # that file's own export reports it; every candidate is kept safe
            rel = path.parent.relative_to(root) if root is not None else Path()
            inputs += [p for folder in (images, Path(images) / rel if images else None, path.parent) if folder
                       for p in Path(folder).glob(f"{glob_escape(path.stem)}.*")]
    return [path for path in inputs if path is not None]


def _export_folder_dataset(src: Path, files: list[Path], names: list[str], out: Path, images: str | None,
                           split: str | None = None, fix: str | None = None) -> int:
    """Every .qgt under ``src`` into one dataset per format (one tasks.json, one COCO file …); a
    file that cannot be exported is reported and the rest go on. A file that fails in one format is
    in none (``add_to_every_writer``): each dataset lists the same images."""
    from qgn.formats import FORMATS, ExportItem
    from qgn.formats import check_export_classes
    from qgn.formats.base import add_to_every_writer
    from qgn.classes import ClassSet
    from qgn.quadtree.qgt import read_qgt

    writers, classes, first, failures = None, None, None, Failures("export", len(files))
    not_written: list[str] = []
    time_left = TimeLeft()
    stems = item_names(src, files, flat=True)  # CLIError before anything is written
    clashing = clashing_stems(files)
    for i, (path, stem) in enumerate(zip(files, stems), start=1):
        try:
            qt, file_classes = read_qgt(path)
            file_classes = file_classes or ClassSet.generic(qt.num_classes, qt.ignore_value)
            if writers is None:
                classes, first = file_classes, path
                folders = [out if len(names) == 1 else out / n for n in names]
                try:  # every format's, before any writer opens
                    check_export_classes(names, classes, folders, root=out, fix=fix or qgt_fix(src, images),
                                         items=stems, images=images)
                except FolderRefusedError as exc:  # nothing written yet; every file would be refused the same
                    raise CLIError(str(exc)) from None
                except UnexportableNameError as exc:  # one dataset has one class set: refused once, for all
                    raise CLIError(f"{shown(path)}: {exc}") from None
                writers = [FORMATS[n].open_writer(classes, folder, qt.num_levels, split=split)
                           for n, folder in zip(names, folders)]
                found = [_image_or_none(path, images, src, clashing) for path in files]
                for writer in writers:  # every file's name: CamVid's list names each as CVAT's does
                    writer.plan(stems, found)
            elif file_classes.names != classes.names or file_classes.ignore_index != classes.ignore_index:
                raise ValueError(f"its classes differ from {first.name}'s ({', '.join(classes.names[:4])} …); "
                                 "one dataset has one class set")
            item = ExportItem(stem, qt.to_label(), qgt_image(path, images, src, clashing))
            check_text_names(names, [path, item.image])
            add_to_every_writer([(writer, item) for writer in writers])
            print(f"[{i}/{len(files)}] {shown(path)}{time_left.suffix(i, len(files))}", flush=True)
        except (ValueError, OSError) as exc:
            failures.report(shown(path), exc)
            not_written.append(stem)
    for writer in writers or []:
        for stem in not_written:  # failed this time: the indexes keep its earlier entry
            writer.keep(stem, None)
        writer.finish()
    print(f"exported {len(files) - len(failures)} of {len(files)} file(s) as {', '.join(names)} to {out}")
    return failures.code()


#: Formats whose files are named as a list of one name a line holds the name (``listable_name``).
LISTED_FORMATS = ("cvat", "voc", "camvid")


def item_names(src: Path, files: list[Path], flat: bool) -> list[str]:
    """The export's name of each .qgt of ``files`` (under the folder ``src``, or ``src`` itself) where a
    format lists one name a line, such as CVAT's and CamVid's (``ListedNames``): a file whose stem the
    list holds as it is keeps it, whatever else is exported; a stem that must change ("two\\nlines",
    listed as "two lines") is listed as it can be, ``-2``, ``-3`` … where that is another file's own
    name. CLIError where two stems differ only in case or accent encoding ("b" and "B": one file on
    macOS and Windows disks), as ``check_outputs`` refuses two files written to one. ``flat``: every
    file goes into one dataset folder, where a stem files of several subfolders share is their path
    under ``src`` (``a__x``, ``b__x``); otherwise each output folder mirrors the file's subfolder
    and names are told apart within it. A single file is named as the export of its folder names it."""
    from collections import Counter

    from qgn.fileio import one_file_name
    from qgn.formats.base import ListedNames, NameClashError

    if src.is_file():
        return [_single_file_name(src)]
    stems = [path.stem for path in files]
    if flat:
        counts = Counter(one_file_name(stem) for stem in stems)
        stems = [path.relative_to(src).with_suffix("").as_posix().replace("/", "__")
                 if counts[one_file_name(stem)] > 1 else stem for path, stem in zip(files, stems)]
    groups: dict[Path, list[int]] = {}
    for i, path in enumerate(files):
        groups.setdefault(Path() if flat else path.parent, []).append(i)
    names = list(stems)
    for indices in groups.values():
        listed = ListedNames()
        try:
            listed.reserve([stems[i] for i in indices])
        except NameClashError as exc:
            first, second = (next(files[i] for i in indices if stems[i] == name) for name in (exc.first, exc.second))
            raise CLIError(f"{first} and {second} would both be written as one item ({exc.why}); rename one "
                           "of them or give them separate output folders") from None
        for i in indices:
            names[i] = listed.pick(stems[i])
    return names


def _single_file_name(path: Path) -> str:
    """The name ``item_names`` gives ``path`` in the export of its folder, where its stem must change
    (a line break in it): never another .qgt's own name there, and the same ``-2`` the folder's export
    gives it. Its own stem otherwise (a file beside it differing only in case is not its concern)."""
    from qgn.formats.base import ListedNames, listable_name

    if listable_name(path.stem) == path.stem:
        return path.stem
    try:
        beside = [p for p in path.parent.iterdir() if p.suffix.lower() == ".qgt" and p.is_file()]
    except OSError:
        beside = []
    beside = sorted(set(beside) | {path})
    listed = ListedNames()
    listed.reserve([p.stem for p in beside], refuse=False)
    for p in beside:
        name = listed.pick(p.stem)
        if p == path:
            return name
    return listed.pick(path.stem)  # pragma: no cover - ``path`` is among them


def _export_file(path: Path, targets, names: list[str], out_dir: Path | None, images: str | None = None,
                 split: str | None = None, stem: str | None = None, fix: str | None = None,
                 root: Path | None = None, clashing=frozenset(), planned: list[str] | None = None,
                 walks: dict | None = None) -> None:
    """One .qgt file: the --png targets, then ``names`` formats into ``out_dir`` (``split``: the
    Cityscapes split folder; ``stem``: the item's name, ``item_names``, default the file's stem; ``fix``:
    what a refusal of a class name no importer reads back says to do, ``qgt_fix``; ``planned``: the
    names of every file the export writes into ``out_dir``, default this one's; ``walks``: the run's
    walks of its output folders, ``check_export_classes``)."""
    from qgn.formats import FORMATS, ExportItem, check_export_classes
    from qgn.classes import ClassSet
    from qgn.fileio import remove_stale_temporaries
    from qgn.quadtree.qgt import read_qgt

    qt, classes = read_qgt(path)
    levels, generic = qt.num_levels, ClassSet.generic(qt.num_classes, qt.ignore_value)
    label = take_label(qt)  # the quadtree is spent: its pyramid's level 0 became the label map
    del qt
    folders = [out_dir if len(names) == 1 else out_dir / name for name in names]
    if names:  # a class a format cannot write, another export's class list: refused before anything is written
        check_export_classes(names, classes or generic, folders, fix=fix or qgt_fix(path, images),
                             items=planned if planned is not None else [stem or path.stem], images=images,
                             walks=walks)
    for name, out in targets:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out.parent)  # of an export killed mid-write
        EXPORTERS[name][1](label, classes, out)
    if names:
        classes = classes or generic
        image = qgt_image(path, images, root, clashing)
        try:
            check_text_names(names, [path, image])
        except ValueError as exc:
            raise ValueError(f"{shown(path)}: {exc}") from None
        for name, folder in zip(names, folders):
            remove_stale_temporaries(folder, depth=4)  # Cityscapes writes gtFine/<split>/<city>/
            FORMATS[name].export_items([ExportItem(stem or path.stem, label, image)], classes, folder,
                                       levels=levels, split=split)


#: Per-image formats that write the image's name into a text file (labelme's imagePath).
def shown(path) -> str:
    """``path`` as text any terminal or log takes, on one line: bytes of a name that are not UTF-8
    as ``\\xff``, a line break as ``\\n`` (``qgn.shown.one_line``)."""
    from qgn.shown import path_text

    return path_text(path)


def take_label(qt):
    """``qt.to_label()`` made in place in the level-0 code grid of ``qt``'s pyramid, the coarser
    levels let go: a label map for export at 1 byte per (padded) pixel, not 2.3. ``qt`` must not
    be used afterwards."""
    import numpy as np

    pyramid = qt.to_tpyramid()
    codes = pyramid.levels[0]
    void_out = qt.ignore_value if qt.ignore_value is not None else -1
    from qgn.quadtree.tpyramid import label_value_dtype

    dtype = label_value_dtype(qt.num_classes, void_out)
    if dtype != codes.dtype or not codes.flags.writeable:
        return qt.to_label()
    table = np.arange(-1, pyramid.void, dtype=np.int64)
    table[0] = 0
    table[pyramid.void] = void_out
    lut = table.astype(dtype)
    band = max(1, (1 << 20) // max(codes.shape[1], 1))
    for r in range(0, codes.shape[0], band):  # in bands: the lookup's temporaries stay small
        codes[r:r + band] = lut[codes[r:r + band]]
    qt.__dict__.pop("_pyramid", None)
    return codes[: qt.height, : qt.width]


def _run_project(args) -> int:
    from qgn.project import Project, ProjectError
    from qgn.project_export import export_project

    if args.src or args.format or any(getattr(args, n) for n in EXPORTERS):
        raise CLIError("--project exports a whole project: use it with --out and --formats, without IN|DIR, "
                       "--format or --png")
    if not args.out:
        raise CLIError("--project needs --out DIR (the output folder)")
    names = _format_names(args.formats or DEFAULT_PROJECT_FORMATS, "--formats")
    split = _split(args, names)
    try:
        project = Project.open(args.project)
    except (FileNotFoundError, ProjectError) as exc:
        raise CLIError(f"--project {args.project}: {exc}") from None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} exists and is not a folder")
    check_output_folder(out)
    check_outputs([], [(path, project.root) for path in dataset_outputs(names, out, folder_each=True)])

    time_left = TimeLeft()

    def progress(i: int, n: int, text: str) -> None:
        print(f"[{i}/{n}] {one_line(text)}{time_left.suffix(i, n)}", flush=True)

    errors: list[str] = []
    result = export_project(project, out, names, progress, only_done=args.only_done, errors=errors,
                            images=None if args.include_images == "none" else args.include_images, split=split)
    exported = sum(1 for im in project.annotated() if im.done or not args.only_done) - len(errors)
    partly = f" (and {len(result.partly)} in some formats only)" if result.partly else ""
    print(f"exported {exported} annotation(s){partly} of {len(project.images)} image(s) as {', '.join(names)} "
          f"to {out}")
    if errors:
        print(f"qgn export: error: {len(errors)} annotation(s) failed: " + "; ".join(errors[:3])
              + (" …" if len(errors) > 3 else ""), file=sys.stderr)
        return 2
    return 0
