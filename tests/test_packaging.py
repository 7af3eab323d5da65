"""What an installed QGN Studio needs: one version, the resources found wherever the package lives,
the files the wheel is told to carry, the desktop entry, icons and palettes, and the bundle's
launcher. Building the wheel and the bundle is too slow for the suite: packaging/check-wheel.sh,
packaging/build-linux.sh and packaging/smoke-test.sh do that."""
from __future__ import annotations

import configparser
import importlib.util
import re
import runpy
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import qgn
from qgn import resources
from qgn.quadtree.label_io import read_classes_file

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"


def load_script(name: str):
    """A module of packaging/ (not a package) by file name."""
    module_name = f"qgn_packaging_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, PACKAGING / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def setup_arguments(monkeypatch) -> dict:
    """The arguments setup.py passes to setuptools.setup (captured, nothing is built)."""
    import setuptools

    captured: dict = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kw: captured.update(kw))
    monkeypatch.chdir(ROOT)
    runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    return captured


# ------------------------------------------------------------------------------------- version
def test_version_is_single_sourced_and_in_the_changelog():
    assert re.fullmatch(r"\d+\.\d+\.\d+", qgn.__version__)
    project = pyproject()
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "qgn.__version__"}
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(qgn.__version__)}\]", changelog, re.M), "no CHANGELOG section"
    assert re.search(r"^## \[0\.1\.0\] - \d{4}-\d{2}-\d{2}$", changelog, re.M)


# ------------------------------------------------------------------------------- what ships
def test_setup_ships_every_code_package_and_every_resource_folder(monkeypatch):
    args = setup_arguments(monkeypatch)
    packages = set(args["packages"])
    on_disk = {  # every folder with Python code (a folder without __init__.py would be left out)
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("qgn", "qgn_studio") for p in (ROOT / top).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert on_disk <= packages, f"packages missing from the wheel: {sorted(on_disk - packages)}"
    assert args["package_dir"] == {"qgn_resources": "resources"}
    folders = {p for p in (ROOT / "resources").rglob("*") if p.is_dir() and "__pycache__" not in p.parts}
    expected = {"qgn_resources"} | {"qgn_resources." + ".".join(f.relative_to(ROOT / "resources").parts) for f in folders}
    resource_packages = {p for p in packages if p.startswith("qgn_resources")}
    assert resource_packages == expected
    assert all(args["package_data"][p] == ["*"] for p in resource_packages)
    assert not any(p.startswith(("tests", "packaging", "benchmarks", "resources")) for p in packages)


def test_pyproject_entry_points_and_extras():
    project = pyproject()["project"]
    assert project["scripts"] == {"qgn": "qgn.cli.main:main", "qgn-studio": "qgn_studio.app:main"}
    assert any(r.startswith("pyinstaller") for r in project["optional-dependencies"]["package"])


# ------------------------------------------------------------------------------ finding them
def test_resources_dir_holds_the_model_samples_icons_and_palettes():
    folder = resources.resources_dir()
    assert resources.demo_model_path() == folder / "models" / "demo.safetensors"
    assert resources.demo_model_path().is_file() and resources.demo_model_path().with_suffix(".json").is_file()
    images = sorted(p.name for p in (resources.samples_dir() / "images").glob("*.png"))
    labels = sorted(p.name for p in (resources.samples_dir() / "labels").glob("*.png"))
    assert images and images == labels
    assert (resources.samples_dir() / "classes.txt").is_file()
    assert [p.name for p in resources.app_icon_paths()] == [f"qgn-studio-{n}.png" for n in resources.ICON_SIZES]
    assert (resources.icons_dir() / "qgn-studio.svg").is_file()
    assert sorted(resources.palettes_dir().glob("*.txt"))


def test_resources_dir_order_env_then_installed_package_then_checkout(monkeypatch, tmp_path):
    checkout = Path(resources.__file__).resolve().parents[1] / "resources"
    monkeypatch.delenv("QGN_RESOURCES", raising=False)
    monkeypatch.setattr(resources.importlib.util, "find_spec", lambda name: None)
    assert resources.resources_dir() == checkout  # a source checkout, nothing installed

    installed = tmp_path / "site" / "qgn_resources"
    (installed / "models").mkdir(parents=True)
    monkeypatch.undo()
    monkeypatch.delenv("QGN_RESOURCES", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    assert resources.installed_resources_dir() == installed  # a wheel: site-packages/qgn_resources
    assert resources.resources_dir() == installed

    monkeypatch.setenv("QGN_RESOURCES", str(tmp_path / "mine"))
    assert resources.resources_dir() == tmp_path / "mine"  # the override wins, even if absent
    assert resources.demo_model_path() == tmp_path / "mine" / "models" / "demo.safetensors"


def test_missing_icons_give_an_empty_list_and_missing_model_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("QGN_RESOURCES", str(tmp_path))
    assert resources.app_icon_paths() == []
    with pytest.raises(FileNotFoundError, match="bundled demo model is missing"):
        resources.default_model(None)


# --------------------------------------------------------------------------------- the icons
def test_icon_pngs_are_square_rgba_pictures_with_rounded_corners():
    for path, size in zip(resources.app_icon_paths(), resources.ICON_SIZES, strict=True):
        image = Image.open(path)
        assert image.size == (size, size) and image.mode == "RGBA"
        pixels = np.asarray(image)
        assert pixels[0, 0, 3] < 32 and pixels[size // 2, size // 2, 3] == 255  # corner cut, centre opaque
        assert len(np.unique(pixels[..., :3].reshape(-1, 3), axis=0)) >= 4


def test_icons_are_what_make_icons_draws():
    make_icons = load_script("make_icons")
    assert make_icons.render_svg() == (resources.icons_dir() / "qgn-studio.svg").read_text()
    for size in (16, 64):
        drawn = np.asarray(make_icons.render_png(size))
        shipped = np.asarray(Image.open(resources.icons_dir() / f"qgn-studio-{size}.png"))
        assert np.array_equal(drawn, shipped)


def test_icon_svg_is_a_square_svg_with_one_shape_per_quadtree_leaf():
    make_icons = load_script("make_icons")
    root = ET.parse(resources.icons_dir() / "qgn-studio.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("viewBox") == "0 0 512 512"
    paths = root.findall("{http://www.w3.org/2000/svg}path")
    leaves = make_icons.quadtree_cells(4)
    assert len(paths) == len(leaves)
    area = sum(cell.size ** 2 for cell in leaves)
    assert area == pytest.approx(1.0)  # the leaves tile the square
    # A leaf is uniform: every corner of an undivided inside/outside cell agrees with the disk.
    for cell in leaves:
        if cell.level < 4:
            assert make_icons.disk_relation(cell.x, cell.y, cell.size) == ("inside" if cell.inside else "outside")


def test_platform_icons_hold_every_size(tmp_path):
    ico, icns = load_script("make_icons").write_platform_icons(tmp_path)
    assert Image.open(ico).info["sizes"] == {(n, n) for n in resources.ICON_SIZES if n <= 256}
    assert {(16, 16, 2), (256, 256, 1), (512, 512, 1)} <= set(Image.open(icns).info["sizes"])


# ------------------------------------------------------------------------------ the palettes
def test_palette_files_are_the_class_sets_of_the_code():
    known = load_script("make_palettes").known_class_sets()
    files = {p.stem: p for p in resources.palettes_dir().glob("*.txt")}
    assert set(files) == set(known)
    for stem, (classes, _description) in known.items():
        read = read_classes_file(files[stem])
        assert read.names == classes.names, stem
        assert read.palette == classes.palette, stem
        assert read.ignore_index == classes.ignore_index, stem


def test_sample_classes_file_is_the_synthetic_palette():
    samples = read_classes_file(resources.samples_dir() / "classes.txt")
    synthetic = read_classes_file(resources.palettes_dir() / "synthetic.txt")
    assert (samples.names, samples.palette, samples.ignore_index) == (
        synthetic.names, synthetic.palette, synthetic.ignore_index)


# ------------------------------------------------------------------------ the desktop entry
def read_desktop_entry() -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read(PACKAGING / "qgn-studio.desktop", encoding="utf-8")
    assert parser.sections() == ["Desktop Entry"]
    return dict(parser["Desktop Entry"])


def test_desktop_entry_starts_the_app_with_its_icon():
    entry = read_desktop_entry()
    assert {"Type", "Name", "Exec", "Icon", "Categories", "Terminal"} <= set(entry)
    assert entry["Type"] == "Application" and entry["Terminal"] == "false"
    command = entry["Exec"].split()
    assert command[0] in pyproject()["project"]["scripts"] and command[1:] == ["%F"]
    assert entry["Icon"] == resources.app_icon_paths()[0].name.rsplit("-", 1)[0]
    assert entry["StartupWMClass"] == "qgn-studio"
    for key in ("Categories", "MimeType", "Keywords"):
        assert entry[key].endswith(";"), f"{key} must end with ';'"


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils not installed")
def test_desktop_entry_passes_desktop_file_validate():
    result = subprocess.run(["desktop-file-validate", str(PACKAGING / "qgn-studio.desktop")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout


# ------------------------------------------------------------------------ the bundle launcher
def test_bundle_launcher_runs_the_spconv_self_check_module_when_asked():
    launcher = str(PACKAGING / "qgn_studio_main.py")
    ok = subprocess.run([sys.executable, launcher, "-m", "qgn.sparse.selfcheck", "torch", "cpu"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, launcher, "-m", "qgn.sparse.selfcheck", "no-such-backend", "cpu"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "no-such-backend" in bad.stderr


def test_app_window_icon_comes_from_the_resources(qapp):
    from qgn_studio.app import app_icon

    icon = app_icon()
    assert not icon.isNull()
    assert {s.width() for s in icon.availableSizes()} == set(resources.ICON_SIZES)


@pytest.mark.skipif(shutil.which("bash") is None, reason="scripts/run is a bash script")
def test_scripts_run_opens_paths_relative_to_where_it_is_called_from(tmp_path):
    """`~/qgn/scripts/run photos/ --screenshot out.png` from the user's own folder: the app must see
    that folder's photos/ and write out.png there (scripts/run changed into the checkout first, so
    relative paths named files there, or nothing). scripts/setup and qgn-studio are stood in for."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "run", checkout / "scripts" / "run")
    (checkout / "scripts" / "setup").write_text("#!/usr/bin/env bash\n")
    app = checkout / ".venv" / "bin" / "qgn-studio"
    app.parent.mkdir(parents=True)
    app.write_text('#!/usr/bin/env bash\necho "cwd=$PWD"\nfor a in "$@"; do [ -e "$a" ] && echo "found $a"; done\nexit 0\n')
    for script in (checkout / "scripts" / "run", checkout / "scripts" / "setup", app):
        script.chmod(0o755)
    user = tmp_path / "user"
    (user / "photos").mkdir(parents=True)
    (user / "photos" / "street.jpg").write_bytes(b"")
    ran = subprocess.run(["bash", str(checkout / "scripts" / "run"), "photos/street.jpg"], cwd=user,
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert f"cwd={user}" in ran.stdout.splitlines() and "found photos/street.jpg" in ran.stdout, ran.stdout
