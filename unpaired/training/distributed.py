"""Data-parallel training under ``torchrun``: one process per device, gradients averaged every phase.

``torchrun --nproc_per_node N -m unpaired train ...`` runs the same command in N processes; torchrun's
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) tells each which it is.
Without it nothing here does anything and training is the single-process loop.

Why not ``DistributedDataParallel`` wrappers: every model here calls each network several times per step
(G(a), G(F(b)), G(b)) and freezes networks per phase by ``requires_grad``; a DDP wrapper expects one forward
per backward over a fixed set of parameters (its hooks fire per backward and wait for every parameter it
was built with). The trainer instead averages the gradients of the parameters a phase updates, after that
phase's backward and before its optimiser step, in ONE ``all_reduce`` of a flattened buffer — the approach
of stylegan3's training loop, with PyTorch's own collective (``torch.distributed``: NCCL on CUDA, gloo on
CPU). The phase's loss travels in the same buffer, so a NaN on any rank stops every rank at the same step.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Iterable, List, Optional

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_environment() -> Distributed:
    """The process group torchrun describes (initialised here on first use), or a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("UNPAIRED_DIST_BACKEND") != "gloo" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
    return Distributed(rank=rank, world_size=dist.get_world_size(), local_rank=local_rank)


def device_for(ctx: Distributed, requested: str) -> Optional[str]:
    """``cuda:LOCAL_RANK`` for a multi-process CUDA run (each process its own GPU); else None (keep as set)."""
    if ctx.enabled and requested in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{ctx.local_rank}"
    return None


def average_gradients(params: Iterable[torch.nn.Parameter], loss: torch.Tensor, ctx: Distributed) -> torch.Tensor:
    """Average the gradients of ``params`` over all processes (a missing gradient counts as zero) and return the
    mean ``loss``; one collective call. Single process: returns ``loss`` unchanged."""
    if not ctx.enabled:
        return loss.detach()
    params: List[torch.nn.Parameter] = list(params)
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params] + [loss.detach().reshape(1).to(params[0].grad.dtype)])
    dist.all_reduce(flat)
    flat /= ctx.world_size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n
    return flat[-1]


def broadcast_state(module: torch.nn.Module, ctx: Distributed) -> None:
    """Rank 0's parameters and buffers everywhere (identical seeds make them equal already; this guarantees it)."""
    if ctx.enabled:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def barrier(ctx: Distributed) -> None:
    if ctx.enabled:
        dist.barrier()


def convert_batchnorm(module: torch.nn.Module, ctx: Distributed, device: torch.device) -> torch.nn.Module:
    """BatchNorm statistics over the global batch (SyncBatchNorm, CUDA only); other norms are per-sample."""
    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules())
    if ctx.enabled and has_bn and device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if ctx.enabled and has_bn:
        import logging

        logging.getLogger("unpaired").warning("BatchNorm statistics stay per process on %s (SyncBatchNorm needs CUDA)",
                                              device.type)
    return module
