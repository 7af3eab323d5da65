"""Multi-process training on PyTorch's own engine: torchrun + DistributedDataParallel.

``qgn train`` run as ``torchrun --nproc_per_node N -m qgn train …`` sees WORLD_SIZE > 1 and:
initialises the default process group (NCCL on GPUs, gloo on CPU), pins each rank to its GPU
(LOCAL_RANK), wraps the model in DDP, gives every rank its own stream of samples, and lets only
rank 0 log and write checkpoints. Nothing here is home-made communication.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | None) -> tuple[DistributedContext, str]:
    """Read torchrun's environment; start the process group when WORLD_SIZE > 1.

    Returns the context and the device this rank trains on.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistributedContext(), device or ("cuda" if torch.cuda.is_available() else "cpu")
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = (device or "cuda").startswith("cuda") and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    else:
        device = "cpu"
    if not dist.is_initialized():
        import_group_defaults_first()
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistributedContext(rank, world, local), device


def import_group_defaults_first() -> None:
    """Import, before the default process group exists, the torch module whose functions take that
    group as a default argument (``def broadcast(tensor, src, group=group.WORLD)``, evaluated at
    import). DDP's constructor imports it (through torch._dynamo and FSDP); imported after
    init_process_group, it keeps the live group for good, so destroy_process_group cannot free it:
    the gloo threads ran on and the group was torn down inside the interpreter's own shutdown,
    where a rank sometimes died after training had succeeded ("terminate called without an active
    exception"). Imported now, the defaults hold None."""
    import torch.distributed.nn  # noqa: F401


def wrap_model(model: torch.nn.Module, ctx: DistributedContext, device: str) -> torch.nn.Module:
    """DDP-wrap for training. Unused parameters are allowed: a level with no active site on one
    rank (GTC, or an image without boundaries) leaves its layers without gradient there."""
    if not ctx.enabled:
        return model
    ids = [torch.device(device).index] if device.startswith("cuda") else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def parameter_digest(model: torch.nn.Module) -> str:
    """SHA-256 of all parameters (name order): equal digests = equal replicas.

    Buffers are left out on purpose: under DDP each rank's BatchNorm running statistics follow its
    own batches after the last forward (DDP re-broadcasts rank 0's at the next one), and rank 0's
    are the ones saved."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.named_parameters()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def gather_digests(model: torch.nn.Module, ctx: DistributedContext) -> list[str]:
    """Every rank's parameter digest (on every rank)."""
    digest = parameter_digest(model)
    if not ctx.enabled:
        return [digest]
    out: list[str] = [""] * ctx.world_size
    dist.all_gather_object(out, digest)
    return out


def wait_for_all(ctx: DistributedContext) -> None:
    """Every rank reaches this point before any goes on (no-op without DDP): a rank that finished
    and tore its process group down while rank 0 was still writing the final model sometimes died at
    exit ("terminate called without an active exception", gloo), failing the whole torchrun."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()


def shutdown(ctx: DistributedContext) -> None:
    """Tear the process group down now, its gloo threads joined, while the interpreter is whole
    (``import_group_defaults_first`` says why that needs an import before the group starts)."""
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
