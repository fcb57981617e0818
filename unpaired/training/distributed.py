"""Data-parallel training under ``torchrun``: process-group set-up, sharding, gradient averaging.

The trainer calls these helpers; with one process (no ``torchrun``, or ``--nproc_per_node 1``) every one of
them is a no-op, so single-process training is unchanged bit for bit.

* Set-up reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), as nanoGPT does. CUDA:
  process r uses ``cuda:LOCAL_RANK`` and NCCL; CPU: gloo.
* ``train.batch_size`` is the **global** batch. Step s covers the global sample counters
  ``s·B … s·B + B − 1`` whatever the number of processes W; process r takes the contiguous block
  ``s·B + r·b … s·B + r·b + b − 1`` (b = B / W). So W processes see exactly the samples one process would,
  and a run resumes with any W that divides B.
* Gradients: no ``DistributedDataParallel``. Every model calls each network several times per step and freezes
  networks per phase with ``requires_grad``; DDP's per-parameter hooks fit that badly. Instead, after each
  phase's backward the trainer averages that phase's gradients in one ``all_reduce`` of a flattened buffer
  (stylegan3 ``training_loop.py``), before the (scaled) optimiser step: every process then takes the same step.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

import torch
import torch.distributed as dist
from torch import Tensor, nn

log = logging.getLogger("unpaired")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: Optional[int] = None) -> torch.device:
    """``auto|cpu|cuda|cuda:N|mps`` -> a device; under torchrun ``auto``/``cuda`` mean ``cuda:LOCAL_RANK``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"train.device={name}: CUDA is not available on this machine; use cpu or auto")
    if device.type == "cuda" and local_rank is not None:
        if device.index is not None:
            raise RuntimeError(f"train.device={name}: under torchrun use train.device=cuda (or auto); "
                               "process r takes cuda:LOCAL_RANK")
        device = torch.device("cuda", local_rank)
    return device


def setup(device_name: str) -> tuple:
    """Join the process group torchrun describes (if any); returns ``(DistInfo, device)``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return DistInfo(), resolve_device(device_name)
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    device = resolve_device(device_name, info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if dist.get_world_size() != world:
        raise RuntimeError(f"WORLD_SIZE={world} but the process group has {dist.get_world_size()} processes")
    return info, device


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def per_rank_batch(batch_size: int, info: DistInfo) -> int:
    if batch_size % info.world_size:
        raise ValueError(f"train.batch_size={batch_size} is the global batch: it must be a multiple of the number "
                         f"of processes ({info.world_size})")
    return batch_size // info.world_size


def rank_seed(seed: int, rank: int) -> int:
    """``seed`` itself for rank 0 (single-process runs keep their streams); a derived seed for the others."""
    if rank == 0:
        return seed
    from ..data.folders import derive_seed

    return derive_seed(seed, 0x5EED, rank)


def prepare_method(method: nn.Module, info: DistInfo, device: torch.device, sync_batchnorm: bool) -> nn.Module:
    """Per-process model set-up: SyncBatchNorm where asked and possible, then rank 0's weights everywhere."""
    if not info.enabled:
        return method
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in method.modules())
    if has_bn and sync_batchnorm:
        if device.type == "cuda":
            method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
            log.info("BatchNorm -> SyncBatchNorm: statistics over the global batch")
        else:
            log.warning("SyncBatchNorm needs CUDA: on %s each process normalises with its own batch statistics",
                        device.type)
    for tensor in method.state_dict().values():
        dist.broadcast(tensor, src=0)
    return method


def average_gradients(params: Iterable[nn.Parameter], info: DistInfo) -> None:
    """Average ``.grad`` over processes in one flat all-reduce (parameters without a gradient stay without one:
    every process runs the same code, so the same ones have gradients everywhere)."""
    if not info.enabled:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= info.world_size
    for g, new in zip(grads, flat.split([g.numel() for g in grads])):
        g.copy_(new.view_as(g))  # copy_ keeps each gradient's memory format (channels_last)


def mean_over_ranks(values: Tensor, info: DistInfo) -> Tensor:
    """Mean of a small tensor (a phase's loss terms) over processes. Every loss here is a mean over the batch,
    so the mean over equal shards is the loss of the global batch; a NaN anywhere makes it NaN everywhere."""
    if not info.enabled:
        return values
    values = values.detach().float().clone()
    dist.all_reduce(values)
    return values / info.world_size


def gather_to_main(obj, info: DistInfo) -> Optional[List]:
    """Every process's ``obj`` as a list on rank 0 (None elsewhere); ``[obj]`` with one process."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size if info.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def rank_state(state: Dict, info: DistInfo) -> Optional[Dict]:
    """The per-process part (pools, RNG) of a checkpoint for this process: its own rank's when the saving run
    had that many processes, rank 0's top-level entries for rank 0, otherwise None (start fresh)."""
    saved = state.get("ranks")
    if saved is not None and info.rank < len(saved):
        return saved[info.rank]
    if info.rank == 0:
        return {"pools": state["pools"], "rng": state["rng"]}
    return None
