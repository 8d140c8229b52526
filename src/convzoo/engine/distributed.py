"""DistributedDataParallel under ``torchrun``: process group, sharding, reductions.

``torchrun --nproc-per-node=N -m convzoo train ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and the rendezvous address in the environment; :func:`setup` reads them and
joins the group (NCCL on CUDA, gloo on the CPU). Without them everything here is a no-op for a
single process, so the trainer has one code path.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..errors import ConvzooError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    rank: int = 0  # this process's index in [0, world)
    world: int = 1  # number of processes
    local_rank: int = 0  # index on this machine (picks the GPU)

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_context() -> DistContext:
    """The context torchrun describes in the environment (one process without it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return DistContext(
        rank=int(os.environ.get("RANK", "0")),
        world=world,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def setup(device_name: str) -> tuple[DistContext, str]:
    """Join the process group if torchrun started us; the device this process should use."""
    ctx = env_context()
    if not ctx.enabled:
        return ctx, device_name
    use_cuda = (
        torch.cuda.is_available()
        and device_name in ("auto", "cuda")
        or device_name.startswith("cuda")
    )
    if use_cuda:
        torch.cuda.set_device(ctx.local_rank)
        device_name = f"cuda:{ctx.local_rank}"
    elif device_name == "auto":
        device_name = "cpu"
    if not dist.is_initialized():
        try:
            dist.init_process_group("nccl" if use_cuda else "gloo")
        except (RuntimeError, ValueError) as e:
            raise ConvzooError(f"cannot join the torchrun process group: {e}") from None
    log.info("process %d of %d on %s", ctx.rank, ctx.world, device_name)
    return ctx, device_name


def cleanup(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``t`` over all processes (in place; returned for chaining)."""
    if ctx.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather_object(obj: Any, ctx: DistContext) -> list[Any]:
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, ctx: DistContext) -> Any:
    """Rank 0's ``obj`` on every process."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def shard_indices(order: torch.Tensor, ctx: DistContext, *, pad: bool) -> torch.Tensor:
    """This process's share of ``order``: every ``world``-th index starting at ``rank``.

    With ``pad`` (training) the order is first extended by repeating its head so every process
    gets the same number of indices, as torch's DistributedSampler does; then batch ``i`` of the
    processes together is exactly batch ``i`` of one process with the global batch size. Without
    ``pad`` (evaluation) nothing is repeated, so no image is counted twice.
    """
    if not ctx.enabled:
        return order
    n = len(order)
    if pad and n % ctx.world:
        extra = ctx.world - n % ctx.world
        order = torch.cat([order, order[:extra]])
    return order[ctx.rank :: ctx.world]
