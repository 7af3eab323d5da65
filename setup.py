"""Which files the wheel carries. Everything else (metadata, dependencies, entry points, the
version) is in pyproject.toml; this file exists only because pyproject.toml cannot combine package
discovery with one package mapped from another folder.

- the code: every package under ``qgn/`` and ``qgn_studio/``;
- the root-level ``resources/`` folder (demo model, samples, icons, palettes) as the data-only
  package ``qgn_resources``, every file in it, found by ``qgn.resources.resources_dir()``;
- two C extensions, ``qgn.sparse._fused`` (the sparse convolution's fused kernel,
  qgn/sparse/fused_conv.py) and ``qgn.sparse._geometry`` (a level's upsampling and neighbour
  table, qgn/sparse/geometry_native.py). Both are optional: where one does not compile (no C
  compiler; _fused also needs x86-64) the install goes on and the sparse code runs its
  pure-PyTorch ops.
"""

from setuptools import Extension, find_namespace_packages, find_packages, setup

RESOURCES = "resources"
RESOURCES_PACKAGE = "qgn_resources"

resource_packages = [RESOURCES_PACKAGE] + [
    f"{RESOURCES_PACKAGE}.{name}" for name in find_namespace_packages(where=RESOURCES)
    if "__pycache__" not in name
]

setup(
    packages=find_packages(include=["qgn", "qgn.*", "qgn_studio", "qgn_studio.*"]) + resource_packages,
    package_dir={RESOURCES_PACKAGE: RESOURCES},
    package_data={package: ["*"] for package in resource_packages},
    exclude_package_data={package: ["*.pyc", ".*"] for package in resource_packages},
    ext_modules=[Extension("qgn.sparse._fused", ["qgn/sparse/_fused.c"], extra_compile_args=["-O3"], optional=True),
                 Extension("qgn.sparse._geometry", ["qgn/sparse/_geometry.c"], extra_compile_args=["-O3"], optional=True)],
)
