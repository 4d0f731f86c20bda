"""Which nets train together: a net's schedule, the cost model of a group step, and the greedy plan
that pads nets of different n, D and L into one group where that is cheaper (see :mod:`.ensemble`)."""

import math
from dataclasses import dataclass

import torch
from torch import nn

from ...model import ModelConfig

# cost model for grouping (seconds per step): least-squares fit to 15 group sizes (N 1..16, rows
# 4..256, L 3..10, H=50) timed in CPU seconds on a shared 2-core AVX512 Xeon, one thread, fp32
GROUP_STEP_OVERHEAD = 1.0e-4   # fixed cost of one group step (~60 small torch calls)
WEIGHT_TIME = 3.7e-9           # per weight of each net (Adam, weight gradients, keeping the best)
FLOP_TIME = 1 / 62e9           # per FLOP of the batched products (~62 GFLOP/s for 50x50 blocks)


@dataclass
class _Net:
    index: int
    cfg: ModelConfig
    x: torch.Tensor          # (n, D) float32
    batch: int               # rows per step (n for full batch)
    epochs: int
    lr: float
    seed: int
    model: nn.Sequential

    @property
    def n(self) -> int:
        return len(self.x)

    @property
    def full_batch(self) -> bool:
        return self.batch >= self.n

    @property
    def steps_per_epoch(self) -> int:
        return 1 if self.full_batch else math.ceil(self.n / self.batch)

    @property
    def schedule(self) -> tuple:
        """Nets may share a group only if their steps line up one to one."""
        return (self.cfg.width, self.cfg.out_act, self.lr, self.full_batch, self.steps_per_epoch, self.epochs,
                self.cfg.depth == 1)


@dataclass
class _Group:
    """Nets trained as one stack, and the estimated seconds per step (the cost model's)."""

    nets: list
    cost: float = 0.0


def _mlp_flops(dim: int, depth: int, width: int) -> int:
    if depth == 1:
        return 2 * dim * dim
    return 2 * (2 * dim * width + (depth - 2) * width * width)


def _shape_of(nets) -> tuple:
    dim = max(n.cfg.dim for n in nets)
    depth = max(n.cfg.depth for n in nets)
    rows = max(min(n.batch, n.n) for n in nets)
    return dim, depth, rows


def _group_cost(nets) -> float:
    """Estimated seconds per step: overhead + per-weight work + padded forward/backward (3x a
    forward) + the whole-set loss after each epoch of a mini-batch group."""
    dim, depth, rows = _shape_of(nets)
    width = nets[0].cfg.width
    f = _mlp_flops(dim, depth, width)
    weights = f // 2 + (depth - 1) * width + dim
    k = nets[0].steps_per_epoch
    eval_rows = 0 if nets[0].full_batch else max(n.n for n in nets) / k
    return GROUP_STEP_OVERHEAD + len(nets) * (weights * WEIGHT_TIME + f * (3 * rows + eval_rows) * FLOP_TIME)


def plan_groups(nets, pad: bool = True) -> list:
    """Split nets into groups trained together: start with one group per (schedule, D, L, batch
    rows) and greedily merge the pair of compatible groups whose merge saves the most estimated time.
    ``pad=False``: no padding at all (one group per schedule, D, L and n)."""
    buckets = {}
    for net in nets:
        key = (net.schedule, net.cfg.dim, net.cfg.depth, min(net.batch, net.n)) + (() if pad else (net.n,))
        buckets.setdefault(key, []).append(net)
    groups = list(buckets.values())
    costs = [_group_cost(g) for g in groups]
    merged_cost = {}  # (first net index of each group) -> estimated cost of the two merged
    while pad:
        best = None
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                a, b = groups[i][0], groups[j][0]
                if a.schedule != b.schedule:
                    continue
                if a.cfg.depth == 1 and a.cfg.dim != b.cfg.dim:  # L=1 nets (Linear(D, D)) cannot be padded
                    continue
                key = (a.index, len(groups[i]), b.index, len(groups[j]))
                if key not in merged_cost:
                    merged_cost[key] = _group_cost(groups[i] + groups[j])
                merged = merged_cost[key]
                gain = costs[i] + costs[j] - merged
                if gain > 0 and (best is None or gain > best[0]):
                    best = (gain, i, j, merged)
        if best is None:
            break
        _, i, j, merged = best
        groups[i] = groups[i] + groups[j]
        costs[i] = merged
        del groups[j], costs[j]
    return [_Group(nets=sorted(g, key=lambda n: n.index), cost=c) for g, c in zip(groups, costs)]
