"""Activation memory of one pass of a network, measured on CPU or CUDA.

``measure_pass`` gives these numbers for one input, parameters never counted:

* ``forward_bytes``: bytes alive after a training forward pass (grad enabled, train mode), i.e.
  the tensors autograd saved for backward plus the outputs — what a training step holds when the
  loss is computed. This is the paper's Table 6 quantity ("forward pass activation memory"): its
  Dil decoder's 0.15 GB is exactly the upsampled logits, which nothing else would count.
* ``saved_bytes``: the part of it saved for backward (``saved_tensors_hooks``).
* ``fwd_bwd_peak_bytes``: the peak over forward + backward, parameter gradients excluded.
* ``infer_peak_bytes``: the peak of an inference forward (eval mode, no grad).
* ``index_bytes`` (CPU): the part of ``forward_bytes`` in integer and bool tensors — site
  coordinates, neighbour rulebooks, masks, pooling indices — rather than float activations.

An encoder + decoder network can be measured in two parts and composed (``compose``): the
encoder once per input size (``measure_encoder_pass``), the decoder per image with the encoder's
features as inputs. Forward and saved bytes add up; the inference peak is the larger of the
encoder's peak and its features plus the decoder's peak; the training peak is the largest of the
encoder's forward peak, everything the encoder keeps plus the decoder's forward + backward peak,
and the encoder's backward peak with the features' gradients arriving (the decoder's backward
ends before the encoder's starts: the encoder's deepest stage waits for the root level's
gradient). Tested equal to measuring the whole network.

On CPU the bytes come from ``LiveTensorTracker`` (qgn.bench.live_tensors: tensors returned by
aten ops, tracked until their storage dies), optionally under ``ShapeOnlyMode`` (same
allocations, no arithmetic) for networks too large to run here. On CUDA they come from the
allocator: ``memory_allocated`` and ``max_memory_allocated`` relative to the moment before the
pass, with parameter gradients pre-allocated so they belong to that baseline.

The backward pass starts from ``output_sum(outputs)`` (the sum of all logits), the same for every
network, so the comparison does not depend on a loss function.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from qgn.bench.live_tensors import LiveTensorTracker
from qgn.bench.shape_only import ShapeOnlyMode


def _storage_key(t: torch.Tensor) -> tuple:
    return (t.device.type, t.device.index, t.untyped_storage()._cdata)


def saved_activation_bytes(fn: Callable[[], object], exclude: list[torch.Tensor] | tuple = ()) -> tuple[int, object]:
    """Run ``fn`` with grad enabled; return (bytes saved for backward, fn's result).

    Every distinct storage saved for backward is counted once. exclude: tensors not to count
    (pass ``model.parameters()`` so weights are not activations).
    """
    excluded = {_storage_key(t) for t in exclude}
    seen: dict[tuple, int] = {}

    def pack(t: torch.Tensor):
        key = _storage_key(t)
        if key not in excluded and key not in seen:
            seen[key] = t.untyped_storage().nbytes()
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        result = fn()
    return sum(seen.values()), result


def cuda_peak_bytes(fn: Callable[[], object], device: torch.device) -> tuple[int, object]:
    """Peak CUDA memory allocated while running ``fn`` above what was allocated before it."""
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    result = fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base, result


@dataclass(frozen=True)
class PassMemory:
    """Activation bytes of one pass (see the module docstring); ``method`` says how they were measured."""

    forward_bytes: int
    saved_bytes: int
    fwd_bwd_peak_bytes: int
    infer_peak_bytes: int
    method: str
    index_bytes: int | None = None  # of forward_bytes, integer / bool tensors (CPU only)


def output_sum(outputs) -> torch.Tensor:
    """Scalar to backpropagate from: a tensor's sum, or the sum over a list of tensors (encoder
    features) or of LevelOutputs (every level's logits)."""
    if isinstance(outputs, torch.Tensor):
        return outputs.sum()
    return sum(o.sum() if isinstance(o, torch.Tensor) else o.logits.sum() for o in outputs)


CPU_METHOD = "live tensors (TorchDispatchMode + weakref finalizers)"


def measure_pass(
    run: Callable[[], object], module: torch.nn.Module, device: torch.device, shape_only: bool = False
) -> PassMemory:
    """Measure ``run()`` (a forward pass of ``module``; returns a tensor or a list of LevelOutput).

    device:     where the pass runs; CUDA uses the allocator's statistics, anything else the tracker.
    shape_only: on CPU, skip the float arithmetic (qgn.bench.shape_only); the bytes are unchanged.
    ``module`` is put in train mode for the training pass and eval mode for inference, then back.
    """
    return _measure(run, module, device, shape_only, ())[0]


def _measure(run, module, device, shape_only, inputs) -> tuple[PassMemory, int]:
    """(PassMemory, bytes alive after backward besides the gradients of parameters and ``inputs``)."""
    with _restored(module, inputs):
        if device.type == "cuda":
            return _measure_cuda(run, module, device, inputs)
        return _measure_cpu(run, module, shape_only, inputs)


@contextlib.contextmanager
def _restored(module, inputs=()):
    """Give ``module`` back its train/eval mode and drop the gradients a measured pass left on its
    parameters and on ``inputs``."""
    training = module.training
    try:
        yield
    finally:
        module.train(training)
        for t in [*module.parameters(), *inputs]:
            t.grad = None


def _saving_hooks(tracker: LiveTensorTracker, saved: dict[int, int]):
    """saved_tensors_hooks that record (in ``saved``) every storage saved for backward that was
    allocated during the pass (parameters and inputs are not)."""

    def pack(t: torch.Tensor):
        serial = tracker.serial_of(t)
        if serial is not None:
            saved[serial] = t.untyped_storage().nbytes()
        return t

    return torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)


def _measure_cpu(run, module: torch.nn.Module, shape_only: bool, inputs) -> tuple[PassMemory, int]:
    params = list(module.parameters())
    saved: dict[int, int] = {}
    method = CPU_METHOD + (", shape-only execution" if shape_only else "")
    mode = ShapeOnlyMode() if shape_only else contextlib.nullcontext()
    module.train()
    with mode, LiveTensorTracker() as tracker, torch.enable_grad():
        with _saving_hooks(tracker, saved):
            outputs = run()
        forward, index = tracker.current_bytes, tracker.live_index_bytes()
        output_sum(outputs).backward()
        param_grads = tracker.serials_of(p.grad for p in params)
        fwd_bwd = tracker.peak_bytes(excluding=param_grads)
        # what the caller still holds when an encoder's backward would start: the outputs
        end = tracker.live_bytes(excluding=param_grads | tracker.serials_of(t.grad for t in inputs))
        del outputs
    module.eval()
    with mode, LiveTensorTracker() as tracker, torch.no_grad():
        outputs = run()
        del outputs
    return PassMemory(forward, sum(saved.values()), fwd_bwd, tracker.peak, method, index), end


def _measure_cuda(run, module: torch.nn.Module, device: torch.device, inputs) -> tuple[PassMemory, int]:
    for p in module.parameters():  # gradients belong to the baseline, not to the activations
        p.grad = torch.zeros_like(p)
    module.train()
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    saved, outputs = saved_activation_bytes(run, list(module.parameters()))
    torch.cuda.synchronize(device)
    forward = torch.cuda.memory_allocated(device) - base
    output_sum(outputs).backward()
    torch.cuda.synchronize(device)
    fwd_bwd = torch.cuda.max_memory_allocated(device) - base
    end = torch.cuda.memory_allocated(device) - base - _unique_bytes([t.grad for t in inputs if t.grad is not None])
    del outputs
    module.eval()
    with torch.no_grad():
        infer, outputs = cuda_peak_bytes(run, device)
        del outputs
    return PassMemory(forward, saved, fwd_bwd, infer, "torch.cuda.memory_allocated / max_memory_allocated"), end


@dataclass(frozen=True)
class EncoderMemory:
    """An encoder's part of a pass, for ``compose``.

    forward_bytes / saved_bytes: as in PassMemory (the features count: they are its outputs).
    forward_peak_bytes:  peak during the training forward.
    backward_peak_bytes: peak during its backward, gradients of the used features arriving at
                         its start (as the decoder's backward hands them over).
    infer_peak_bytes:    peak of an inference forward.
    feature_bytes:       the returned features, alive while a decoder runs on them.
    """

    forward_bytes: int
    saved_bytes: int
    forward_peak_bytes: int
    backward_peak_bytes: int
    infer_peak_bytes: int
    feature_bytes: int
    method: str
    index_bytes: int | None = None


@dataclass(frozen=True)
class DecoderMemory:
    """A decoder's part of a pass (features are inputs), for ``compose``.

    pass_memory: PassMemory of the decoder alone.
    end_bytes:   bytes alive after its backward other than parameter gradients and the
                 features' gradients (which the encoder's part accounts for).
    """

    pass_memory: PassMemory
    end_bytes: int


def compose(encoder: EncoderMemory, decoder: DecoderMemory) -> PassMemory:
    """The pass of encoder then decoder from the two parts (see the module docstring)."""
    d = decoder.pass_memory
    return PassMemory(
        forward_bytes=encoder.forward_bytes + d.forward_bytes,
        saved_bytes=encoder.saved_bytes + d.saved_bytes,
        fwd_bwd_peak_bytes=max(
            encoder.forward_peak_bytes,
            encoder.forward_bytes + d.fwd_bwd_peak_bytes,
            encoder.backward_peak_bytes + decoder.end_bytes,
        ),
        infer_peak_bytes=max(encoder.infer_peak_bytes, encoder.feature_bytes + d.infer_peak_bytes),
        method=encoder.method,
        index_bytes=None if encoder.index_bytes is None or d.index_bytes is None else encoder.index_bytes + d.index_bytes,
    )


def _unique_bytes(tensors: Sequence[torch.Tensor]) -> int:
    storages = {_storage_key(t): t.untyped_storage().nbytes() for t in tensors}
    return sum(storages.values())


def measure_encoder_pass(
    encoder: torch.nn.Module, image: torch.Tensor, used: Sequence[int], device: torch.device, shape_only: bool = False
) -> EncoderMemory:
    """Measure ``encoder(image)`` (a list of feature maps) as the first part of a network whose
    decoder reads the features ``used`` (indices into that list) and so sends gradients to them.

    The features' gradients enter through ``(f * 1.0).sum()``, whose backward makes one new
    feature-sized gradient per used feature inside the autograd engine, as a decoder's would.
    """
    with _restored(encoder):
        if device.type == "cuda":
            return _encoder_cuda(encoder, image, used, device)
        return _encoder_cpu(encoder, image, used, shape_only)


def _feature_loss(feats: list[torch.Tensor], used: Sequence[int]) -> torch.Tensor:
    return sum((feats[i] * 1.0).sum() for i in used)


def _encoder_cpu(encoder, image, used, shape_only) -> EncoderMemory:
    params = list(encoder.parameters())
    saved: dict[int, int] = {}
    method = CPU_METHOD + (", shape-only execution" if shape_only else "")
    mode = ShapeOnlyMode() if shape_only else contextlib.nullcontext()
    encoder.train()
    with mode, LiveTensorTracker() as tracker, torch.enable_grad():
        with _saving_hooks(tracker, saved):
            feats = encoder(image)
        forward, forward_peak, index = tracker.current_bytes, tracker.peak, tracker.live_index_bytes()
        feature_bytes = _unique_bytes(feats)
        mark = len(tracker.events)
        loss = _feature_loss(feats, used)
        del feats
        loss.backward()
        grads = tracker.serials_of(p.grad for p in params)
        backward_peak = tracker.peak_bytes(excluding=grads, since=mark)
        del loss
    encoder.eval()
    with mode, LiveTensorTracker() as tracker, torch.no_grad():
        feats = encoder(image)
        del feats
    return EncoderMemory(forward, sum(saved.values()), forward_peak, backward_peak, tracker.peak, feature_bytes,
                         method, index)


def _encoder_cuda(encoder, image, used, device) -> EncoderMemory:
    for p in encoder.parameters():
        p.grad = torch.zeros_like(p)
    encoder.train()
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    saved, feats = saved_activation_bytes(lambda: encoder(image), list(encoder.parameters()))
    torch.cuda.synchronize(device)
    forward, forward_peak = torch.cuda.memory_allocated(device) - base, torch.cuda.max_memory_allocated(device) - base
    feature_bytes = _unique_bytes(feats)
    torch.cuda.reset_peak_memory_stats(device)
    loss = _feature_loss(feats, used)
    del feats
    loss.backward()
    del loss
    torch.cuda.synchronize(device)
    backward_peak = torch.cuda.max_memory_allocated(device) - base
    encoder.eval()
    with torch.no_grad():
        infer, feats = cuda_peak_bytes(lambda: encoder(image), device)
        del feats
    return EncoderMemory(forward, saved, forward_peak, backward_peak, infer, feature_bytes,
                         "torch.cuda.memory_allocated / max_memory_allocated")


def measure_decoder_pass(
    run: Callable[[], object], module: torch.nn.Module, features: Sequence[torch.Tensor],
    device: torch.device, shape_only: bool = False,
) -> DecoderMemory:
    """``measure_pass`` of a decoder reading ``features`` (leaves made outside, requires_grad),
    plus what stays alive after its backward besides parameter and feature gradients."""
    memory, end = _measure(run, module, device, shape_only, tuple(features))
    return DecoderMemory(memory, end)
