"""Backend selection: explicit names, QGN_SPARSE_BACKEND, auto-selection and its fallback warning."""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
import warnings

import pytest
import torch

from qgn.sparse import backend as backend_module
from qgn.sparse import selfcheck
from qgn.sparse.backend import (
    BACKEND_ENV_VAR,
    SparseBackendWarning,
    available_backends,
    get_backend,
    set_default_backend,
)

HAS_SPCONV = importlib.util.find_spec("spconv") is not None
needs_spconv = pytest.mark.skipif(not HAS_SPCONV, reason="spconv not installed")


@pytest.fixture(autouse=True)
def fresh_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget this process's backend choice for the test; monkeypatch restores it afterwards."""
    monkeypatch.setattr(backend_module, "_default_name", None)
    monkeypatch.setattr(backend_module, "_auto_name", None)
    monkeypatch.delenv(BACKEND_ENV_VAR, raising=False)


def test_importing_qgn_sparse_does_not_import_spconv() -> None:
    code = "import sys, qgn.sparse; sys.exit(1 if any(m.startswith('spconv') for m in sys.modules) else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_explicit_name_wins() -> None:
    assert get_backend("torch").name == "torch"


def test_environment_variable_selects_torch_without_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV_VAR, "torch")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert get_backend().name == "torch"


@needs_spconv
def test_environment_variable_selects_spconv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV_VAR, "spconv")
    assert get_backend().name == "spconv"


def test_set_default_backend_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV_VAR, "spconv")
    set_default_backend("torch")
    assert get_backend().name == "torch"


def test_unknown_names_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown sparse backend"):
        set_default_backend("cuda-magic")
    monkeypatch.setenv(BACKEND_ENV_VAR, "cuda-magic")
    with pytest.raises(ValueError, match="unknown sparse backend"):
        get_backend()


def test_auto_without_cuda_is_torch_without_importing_spconv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend_module, "_cuda_available", lambda: False)
    monkeypatch.setattr(selfcheck, "run_self_check", lambda name: pytest.fail("no self-check without CUDA"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SparseBackendWarning)
        assert get_backend().name == "torch"


def test_failing_self_check_falls_back_to_torch_with_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend_module, "_cuda_available", lambda: True)  # auto only tries spconv with CUDA
    # A stand-in "spconv" that imports fine but whose self-check fails.
    monkeypatch.setitem(backend_module._FACTORIES, "spconv", backend_module._make_torch_backend)
    monkeypatch.setattr(backend_module, "_INSTANCES", {})
    monkeypatch.setattr(selfcheck, "run_self_check", lambda name: "its self-check failed on purpose")
    with pytest.warns(SparseBackendWarning, match="failed on purpose") as record:
        assert get_backend().name == "torch"
        assert get_backend(None).name == "torch"  # decided once: no second warning
    assert len(record) == 1


def test_spconv_that_cannot_be_imported_falls_back_to_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_spconv() -> backend_module.SubmConvBackend:
        raise ImportError("no module named spconv")

    monkeypatch.setitem(backend_module._FACTORIES, "spconv", broken_spconv)
    monkeypatch.setattr(backend_module, "_INSTANCES", {})
    monkeypatch.setattr(backend_module, "_cuda_available", lambda: True)
    monkeypatch.setenv(BACKEND_ENV_VAR, "auto")
    with pytest.warns(SparseBackendWarning, match="cannot be imported"):
        assert get_backend().name == "torch"
    assert available_backends() == ["torch"]


@needs_spconv
def test_auto_selects_spconv_when_it_passes_the_self_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend_module, "_cuda_available", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SparseBackendWarning)
        assert get_backend().name == "spconv"


@needs_spconv
@pytest.mark.parametrize("caller_mode", ["grad", "no_grad", "inference_mode", "autocast"])
def test_real_self_check_passes_on_cpu_whatever_the_callers_autograd_mode(caller_mode: str) -> None:
    modes: dict[str, contextlib.AbstractContextManager[object]] = {
        "grad": contextlib.nullcontext(),
        "no_grad": torch.no_grad(),
        "inference_mode": torch.inference_mode(),
        "autocast": torch.autocast("cpu", dtype=torch.bfloat16),
    }
    with modes[caller_mode]:
        assert selfcheck.check_backend_on_device("spconv", torch.device("cpu")) is None


def test_self_check_in_a_child_process_reports_failure() -> None:
    reason = selfcheck.check_backend_in_child_process("no-such-backend", "cpu")
    assert reason is not None and "exited with code 1" in reason


def test_inference_taps_are_remembered_while_the_weight_is_unchanged() -> None:
    import gc

    from qgn.sparse import torch_backend
    from qgn.sparse.torch_backend import inference_taps, weight_to_taps

    conv = torch.nn.Linear(1, 1)  # any module: the weight is what is keyed
    conv.weight = torch.nn.Parameter(torch.randn(4, 3, 3, 2))
    first = inference_taps(conv.weight)
    assert inference_taps(conv.weight) is first and torch.equal(first, weight_to_taps(conv.weight))
    with torch.no_grad():
        conv.weight.mul_(2)  # what an optimiser step does: in place
    assert torch.equal(inference_taps(conv.weight), weight_to_taps(conv.weight))
    conv.load_state_dict({"weight": torch.randn(4, 3, 3, 2), "bias": conv.bias.detach()})
    assert torch.equal(inference_taps(conv.weight), weight_to_taps(conv.weight))
    key = id(conv.weight)
    del conv
    gc.collect()
    assert key not in torch_backend._taps_cache  # nothing kept for a weight that is gone
