"""Train many small nets at once: :func:`fit_many` = one :func:`train.fit` per net, run together.

A sweep (the corner-loss experiment, depth x seed tables) trains tens of tiny MLPs (L=7, H=50,
D=2..4) whose ``fit`` steps cost ~0.3-0.8 ms each on a CPU, most of it per-call overhead (about 60
small torch calls through autograd and Adam). ``fit_many`` puts the weights of a *group* of nets
layer by layer into one flat tensor and runs a step of the whole group as ~60 batched calls:
``torch.baddbmm`` forwards, a hand-written backward (``bmm`` + ATen's own activation backwards; no
autograd graph), one fused Adam over the flat tensor, activation buffers reused from step to step.
Adam is elementwise, so one Adam over the stack is one Adam per net; each net's loss is its own
mean, so the gradient of a net is its own gradient.

Why hand-written ``baddbmm`` rather than ``torch.func`` (``stack_module_state`` + ``vmap``): on a
2-core AVX512 Xeon, one thread, one step of 22 stacked L=7/H=50 nets took 1.15 ms with baddbmm +
autograd vs 2.0 ms with vmap + autograd (functorch's batching layer adds work per call); writing
the backward by hand removes autograd's bookkeeping too, and lets every product use nn.Linear's
own operand layouts (so that ``exact=True`` can match ``fit`` bit for bit).

Nets of different sizes are padded into one group where the cost model (:func:`plan_groups`) says
that is cheaper than running separate groups:

- rows: each net uses its own rows of a padded batch; padded rows have loss weight 0;
- dims: a D=2 net inside a D=4 group has zero inputs and masked outputs in the padded dims, so the
  padded weights get exactly zero gradient and stay zero;
- depth: an L=3 net inside an L=7 group has identity ``H x H`` layers (zero bias) inserted before its
  output layer; after a ReLU, ``relu(I h) = h`` exactly, so the function and gradients are those
  of the L=3 net; the identity layers' gradients are masked to zero, so Adam never moves them.

Nets only share a group if they share H, the output activation, the learning rate and the step
schedule (full batch or not, steps per epoch, epochs), so every net gets exactly ``fit``'s steps.
Compute-heavy nets (hundreds of rows per step) gain less: stacking removes per-call overhead,
not arithmetic. Two things keep their steps short: activations are feature-major, (N, H, rows),
which makes the batched products ~10% faster here than nn.Linear's row-major (N, rows, H) (``exact``
keeps row-major); and blocks of one shape lie back to back in the flat tensor, so keeping the best
weights of some of the nets copies a few strided views instead of one slice per layer and net.
"""

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from ..device import SMALL_MODEL, pick_device
from ..errors import KalsError, check_float, check_int
from ..model import ModelConfig, build_model, config_of
from ..pipeline import Run, make_config
from ..presets import LR
from ..train import TrainResult, check_in_range, diagnose, make_adam

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


KEEP_WHERE = 16_384  # runs up to this many floats are kept with one torch.where (faster than per-net copies)
ALIGN = 16  # floats (64 bytes): every tensor of every net starts on a cache line, as a fresh tensor does


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


class _Stack:
    """The weights of a group's nets, layer by layer, in one flat tensor.

    Layer k of a group of depth Lg maps sizes[k] -> sizes[k+1] (D, H, ..., H, D); its weights are a
    contiguous (N, out, in) block (nn.Linear's layout) and its biases an (N, 1, out) block, so the
    batched products write their gradients in place, and the forward and backward make the same
    products as autograd through ``nn.Linear`` (x W^T + b, g W, g^T x): on this CPU they then round
    exactly like ``fit``'s single ones. ``grad`` and Adam's moments share the layout.
    """

    def __init__(self, nets, dim, depth, width, device, exact=False):
        self.nets, self.dim, self.depth, self.width, self.exact = nets, dim, depth, width, exact
        self.sizes = [dim] + [width] * (depth - 1) + [dim] if depth > 1 else [dim, dim]
        N = len(nets)
        # blocks of one shape lie one after another (hidden H x H weights, then the biases of every
        # layer but the last, then the rest), so that each run of equal blocks is one strided view
        # and keeping the best weights of some nets takes a handful of calls, not one per block
        shapes = {("W", k): (N, b, a) for k, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:]))}
        shapes.update({("b", k): (N, 1, b) for k, b in enumerate(self.sizes[1:])})
        last = depth - 1
        order = ([("W", k) for k in range(1, last)] + [("b", k) for k in range(last)]
                 + [("W", 0)] + ([("W", last)] if last else []) + [("b", last)])
        self.spans, off = {}, 0  # block -> (offset, shape)
        for key in order:
            self.spans[key] = (off, shapes[key])
            off = _align(off + math.prod(shapes[key]))
        self.total = off
        self.runs = []  # (offset, count, shape, stride): runs of equal-shaped consecutive blocks
        for key in order:
            o, shape = self.spans[key]
            r = self.runs[-1] if self.runs else None
            if r and r[2] == shape and r[0] + r[1] * r[3] == o:
                self.runs[-1] = (r[0], r[1] + 1, shape, r[3])
            else:
                self.runs.append((o, 1, shape, _align(math.prod(shape))))
        self.flat = torch.zeros(off, device=device)
        self.grad = torch.zeros(off, device=device)
        self.W, self.b = self._views(self.flat)
        self.gW, self.gb = self._views(self.grad)
        # feature-major activations (N, H, B) make faster batched products on a CPU (~10% a step);
        # exact mode keeps nn.Linear's row-major layout so that every product rounds as in fit
        self.feature_major = not exact
        self.WT = [w.transpose(1, 2) for w in self.W]
        self.bT, self.gbT = ([v.view(v.shape[0], v.shape[2], 1) for v in vs] for vs in (self.b, self.gb))
        mask = torch.zeros(off, device=device)  # 1 where a weight belongs to the real net
        mW, mb = self._views(mask)
        self.layer_of = []  # per net: the group layer of each of its own Linear layers
        with torch.no_grad():
            for i, net in enumerate(nets):
                lins = [m for m in net.model if isinstance(m, nn.Linear)]
                mine = list(range(len(lins) - 1)) + [depth - 1]  # its hidden layers, then its output layer
                self.layer_of.append(mine)
                for k in range(depth):
                    if k in mine:
                        lin = lins[mine.index(k)]
                        o, a = lin.weight.shape
                        self.W[k][i, :o, :a] = lin.weight.detach()
                        self.b[k][i, 0, :o] = lin.bias.detach()
                        mW[k][i, :o, :a] = 1
                        mb[k][i, 0, :o] = 1
                    else:  # identity padding layer (H x H, zero bias): exact after a ReLU
                        self.W[k][i] = torch.eye(width, device=device)
        # depth padding puts identity layers at group layers lo = min(L)-1 .. Lg-2 (lo >= 1); their
        # weights and biases are the tails of the hidden-weight and bias runs, and their gradient is
        # masked to 0 (the padding of D and of rows gets exactly zero gradient by itself)
        lo = min(len(m) for m in self.layer_of) - 1
        self.pad_spans = []
        if lo < last:
            for first, end in ((("W", lo), ("b", 0)), (("b", lo), ("W", 0))):
                a, b = self.spans[first][0], self.spans[end][0]
                self.pad_spans.append((a, b, mask[a:b].clone()))
        self._ws, self._kept = {}, None
        self.out_act = nets[0].cfg.out_act

    def _views(self, flat):
        """Per layer: weights (N, out, in) and biases (N, 1, out), views into ``flat``."""
        def view(key):
            o, shape = self.spans[key]
            return flat[o:o + math.prod(shape)].view(shape)
        return [view(("W", k)) for k in range(self.depth)], [view(("b", k)) for k in range(self.depth)]

    def _runs(self, flat) -> list:
        """The runs of equal blocks of ``flat``, each one (count, N, ...) strided view."""
        return [flat.as_strided((c,) + shape, (stride,) + tuple(torch.empty(shape).stride()), o)
                for o, c, shape, stride in self.runs]

    def _per_net(self, fn, rows, *ts):
        """``fn`` applied to each net's own (rows_i, D_i) block as a fresh contiguous tensor — the
        tensor ``fit`` would hold — so vectorised kernels split it into vector body and scalar
        tail exactly as there; padding is left as it is."""
        out = ts[0].clone()
        for i, net in enumerate(self.nets):
            r, d = rows[i], net.cfg.dim
            out[i, :r, :d] = fn(*(t[i, :r, :d].contiguous() for t in ts))
        return out

    def _workspace(self, rows: int) -> dict:
        """Reused activation/gradient buffers for batches of ``rows`` rows: no allocation per step
        (fresh multi-MB tensors each step cost page faults once glibc hands freed memory back).
        Row-major (N, rows, H) as nn.Linear holds them, or feature-major (N, H, rows)."""
        ws = self._ws.get(rows)
        if ws is None:
            N, H, D, dev = len(self.nets), self.width, self.dim, self.flat.device
            shape = (lambda f: (N, f, rows)) if self.feature_major else (lambda f: (N, rows, f))
            ws = {"h": [torch.empty(shape(H), device=dev) for _ in range(self.depth - 1)],
                  "y": torch.empty(shape(D), device=dev), "gy": torch.empty(shape(D), device=dev),
                  "g": [torch.empty(shape(H), device=dev) for _ in range(2)]}
            ws["hT"] = [h.transpose(1, 2) for h in ws["h"]]
            if len(self._ws) > 4:
                self._ws.clear()
            self._ws[rows] = ws
        return ws

    def forward(self, h, rows=None):
        """(N, B, D) -> (activations [input, after ReLU 1, ...], output y (N, B, D)), in reused
        buffers (valid until the next forward with as many rows). ``rows``: each net's real rows
        (for ``exact``). Feature-major, activations are (N, H, B) and y a transposed view."""
        ws, fm = self._workspace(h.shape[1]), self.feature_major
        if fm:
            h = h.transpose(1, 2)
        hs = [h]
        for k in range(self.depth):
            out = ws["h"][k] if k < self.depth - 1 else ws["y"]
            if fm:  # W h + b, with h (N, in, B)
                h = torch.baddbmm(self.bT[k], self.W[k], h, out=out)
            else:   # h W^T + b, with h (N, B, in): nn.Linear's own product
                h = torch.baddbmm(self.b[k], h, self.WT[k], out=out)
            if k < self.depth - 1:
                hs.append(h.relu_())
        act = torch.sigmoid if self.out_act == "sigmoid" else torch.tanh
        y = self._per_net(act, rows, h) if self.exact else act(h, out=h)
        return hs, (y.transpose(1, 2) if fm else y)

    def backward(self, hs, y, gy, rows=None):
        """Write d(loss)/d(weights) into ``self.grad``, given ``gy`` = d(loss)/dy (both (N, B, D))."""
        ws, fm = self._workspace(y.shape[1]), self.feature_major
        if self.out_act == "sigmoid":
            bwd, bwd_out = torch.ops.aten.sigmoid_backward, torch.ops.aten.sigmoid_backward.grad_input
        else:
            bwd, bwd_out = torch.ops.aten.tanh_backward, torch.ops.aten.tanh_backward.grad_input
        if self.exact:
            g = self._per_net(bwd, rows, gy, y)
        elif fm:
            g = bwd_out(gy.transpose(1, 2), y.transpose(1, 2), grad_input=ws["gy"])
        else:
            g = bwd_out(gy, y, grad_input=ws["gy"])
        thr = torch.ops.aten.threshold_backward.grad_input
        if fm:  # the activations as (N, B, H) views
            hsT = [hs[0].transpose(1, 2)] + ws["hT"][:len(hs) - 1]
        for k in range(self.depth - 1, -1, -1):
            if fm:  # g (N, out, B): dW = g h^T, db = sum over B, dh = W^T g
                torch.bmm(g, hsT[k], out=self.gW[k])
                torch.sum(g, dim=2, keepdim=True, out=self.gbT[k])
            else:   # g (N, B, out): dW = g^T h, db = sum over B, dh = g W
                torch.bmm(g.transpose(1, 2), hs[k], out=self.gW[k])
                torch.sum(g, dim=1, keepdim=True, out=self.gb[k])
            if k > 0:
                buf = ws["g"][k % 2]
                torch.bmm(self.WT[k], g, out=buf) if fm else torch.bmm(g, self.W[k], out=buf)
                g = thr(buf, hs[k], 0, grad_input=buf)
        for a, b, m in self.pad_spans:  # identity padding layers: zero gradient, so Adam never moves them
            self.grad[a:b].mul_(m)

    def unstack_into(self, flat, i, model):
        """Copy net i's weights from ``flat`` (self.flat or a copy of it) into ``model``."""
        with torch.no_grad():
            for p, v in zip(model.parameters(), self.net_state(flat, i, model)):
                p.copy_(v)

    def keep(self, best, improved):
        """Copy the current weights of the nets in ``improved`` (indices) into ``best``."""
        if len(improved) == len(self.nets):
            best.copy_(self.flat)
        elif improved:
            if self._kept is None or self._kept[0] is not best:  # views made once per best tensor
                runs = [(cur, old, [(cur[:, i], old[:, i]) for i in range(len(self.nets))])
                        for cur, old in zip(self._runs(self.flat), self._runs(best))]
                self._kept = (best, runs)
            chosen = set(improved)
            rest = [i for i in range(len(self.nets)) if i not in chosen]
            mask = torch.tensor([i in chosen for i in range(len(self.nets))], device=best.device)[None, :, None, None]
            for cur, old, per_net in self._kept[1]:
                if old.numel() <= KEEP_WHERE:  # a small run: one masked copy
                    torch.where(mask, cur, old, out=old)
                elif len(improved) <= 2 * len(rest):  # copy the improved nets' blocks
                    for i in improved:
                        per_net[i][1].copy_(per_net[i][0])
                else:  # copy the whole run, then put the others' best weights back
                    saved = [per_net[i][1].clone() for i in rest]
                    old.copy_(cur)
                    for i, v in zip(rest, saved):
                        per_net[i][1].copy_(v)

    def net_state(self, flat, i, model) -> list:
        """Net i's tensors of ``flat`` (weights, or Adam's moments) in ``model.parameters()`` order."""
        lins = [m for m in model if isinstance(m, nn.Linear)]
        Ws, bs = self._views(flat)
        out = []
        for lin, k in zip(lins, self.layer_of[i]):
            o, a = lin.weight.shape
            out.append(Ws[k][i, :o, :a].clone())
            out.append(bs[k][i, 0, :o].clone())
        return out


class _StackAdam:
    """Adam (betas 0.9/0.999, eps 1e-8, as train.make_adam) over a stack's flat weights.

    Adam is elementwise, so one update of the (N, P) tensor is N per-net updates. The fused CPU
    kernel rounds an element slightly differently near the end of a tensor than inside it, so by
    default (one tensor: fastest) the updates differ from ``fit``'s per-parameter ones in the last
    bit now and then. ``exact=True`` updates one view per (net, layer tensor) instead, exactly as
    ``fit``'s Adam sees its parameters, which makes ``fit_many`` bit-for-bit ``fit`` (~20 us more
    per net and step).
    """

    def __init__(self, st: "_Stack", lr: float, exact: bool):
        self.lr, self.steps = lr, 0
        self.exp_avg = torch.zeros_like(st.flat)
        self.exp_avg_sq = torch.zeros_like(st.flat)
        self.step_t = torch.zeros((), device=st.flat.device)
        if exact:
            def split(t):
                Ws, bs = st._views(t)
                return [v[i] for i in range(len(st.nets)) for pair in zip(Ws, bs) for v in pair]
        else:
            def split(t):
                return [t]
        self.lists = [split(st.flat), split(st.grad), split(self.exp_avg), split(self.exp_avg_sq)]
        self.fused = st.flat.device.type in ("cpu", "cuda") and hasattr(torch, "_fused_adam_")

    def step(self):
        self.steps += 1
        self.step_t += 1
        p, g, m, v = self.lists
        if self.fused:
            try:
                torch._fused_adam_(p, g, m, v, [], [self.step_t] * len(p), lr=self.lr, beta1=0.9, beta2=0.999,
                                   weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)
                return
            except (RuntimeError, TypeError):
                self.fused = False
        # the textbook update (what torch's non-fused Adam computes)
        for pi, gi, mi, vi in zip(p, g, m, v):
            mi.lerp_(gi, 0.1)
            vi.mul_(0.999).addcmul_(gi, gi, value=0.001)
            bc1 = 1 - 0.9 ** self.steps
            bc2 = 1 - 0.999 ** self.steps
            denom = (vi.sqrt() / math.sqrt(bc2)).add_(1e-8)
            pi.addcdiv_(mi, denom, value=-self.lr / bc1)


def _as_list(value, n, name):
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise KalsError(f"{name} has {len(value)} entries but there are {n} nets")
        return list(value)
    return [value] * n


class _GroupRun:
    """One group of stacked nets being trained: the padded data and masks, the stacked weights and
    Adam, and per net the best weights, losses and status (what ``fit`` keeps for one net)."""

    def __init__(self, group: _Group, device, exact: bool):
        nets = self.nets = group.nets
        n = self.n_nets = len(nets)
        self.st = _Stack(nets, max(t.cfg.dim for t in nets), max(t.cfg.depth for t in nets), nets[0].cfg.width,
                         device, exact)
        dg, n_max = self.st.dim, max(t.n for t in nets)
        self.X = torch.zeros(n, n_max, dg, device=device)
        rowmask = torch.zeros(n, n_max, 1, device=device)
        self.dimmask = torch.zeros(n, 1, dg, device=device)
        for i, net in enumerate(nets):
            self.X[i, :net.n, :net.cfg.dim] = net.x
            rowmask[i, :net.n] = 1
            self.dimmask[i, 0, :net.cfg.dim] = 1
        self.n_rows = [t.n for t in nets]
        self.full_mask = rowmask * self.dimmask                      # (N, n_max, Dg)
        self.counts = [t.n * t.cfg.dim for t in nets]
        self.full_count = torch.tensor([float(c) for c in self.counts], device=device)
        self.adam = _StackAdam(self.st, nets[0].lr, exact)
        self.best_flat = self.st.flat.clone()
        self.best_loss, self.best_epoch, self.losses = [math.inf] * n, [0] * n, [[] for _ in range(n)]
        self.alive, self.done, self.status = [True] * n, [0] * n, ["ok"] * n
        self.message, self.last_state = [""] * n, [None] * n

    @torch.no_grad()
    def full_values(self) -> list:
        """Whole-set MSE per net as train.full_loss computes it: a float32 sum, divided in double."""
        _, y = self.st.forward(self.X, self.n_rows)
        d = y - self.X
        sums = (d * d * self.full_mask).sum(dim=(1, 2)).tolist()
        return [s / c for s, c in zip(sums, self.counts)]

    def record(self, values, epoch_for_best: int, epoch: int) -> None:
        """Track best weights (by value, at the current weights), losses and divergence."""
        improved = []
        for i, v in enumerate(values):
            if self.alive[i] and math.isfinite(v) and v < self.best_loss[i]:
                self.best_loss[i], self.best_epoch[i] = v, epoch_for_best
                improved.append(i)
        self.st.keep(self.best_flat, improved)
        for i, v in enumerate(values):
            if not self.alive[i]:
                continue
            if not math.isfinite(v):
                self.alive[i] = False
                self.status[i] = "diverged"
                self.message[i] = f"loss became {v} at epoch {epoch}; kept the last good weights"
                self.last_state[i] = self.st.net_state(self.st.flat, i, self.nets[i].model)
                continue
            self.losses[i].append(v)
            self.done[i] = epoch + 1

    @torch.no_grad()
    def run_full_batch(self, bar) -> None:
        scale = self.full_mask * (2.0 / self.full_count)[:, None, None]   # d(mean)/d(diff) = 2 diff / count
        for epoch in range(self.nets[0].epochs):
            hs, y = self.st.forward(self.X, self.n_rows)
            d = y - self.X
            self.record(((d * d * self.full_mask).sum(dim=(1, 2)) / self.full_count).tolist(), epoch, epoch)
            if not any(self.alive):
                break
            self.st.backward(hs, y, d.mul_(scale), self.n_rows)
            self.adam.step()
            bar.update(self.n_nets)
        for i, v in enumerate(self.full_values()):  # the weights after the last step
            if self.alive[i] and self.done[i] > 0 and math.isfinite(v) and v < self.best_loss[i]:
                self.best_loss[i], self.best_epoch[i] = v, self.done[i]
                self.st.keep(self.best_flat, [i])

    def _batches(self, gens, epoch: int, bs: int, k_steps: int) -> tuple:
        """Each net's own batch order for ``epoch`` (fit's seeds), padded to ``bs`` rows a step."""
        n = self.n_nets
        perms, wts = torch.zeros(n, k_steps * bs, dtype=torch.long), torch.zeros(n, k_steps * bs)
        lens = [[0] * n for _ in range(k_steps)]
        for i, net in enumerate(self.nets):
            gens[i].manual_seed(net.seed * 1_000_003 + epoch)
            p = torch.randperm(net.n, generator=gens[i])
            for j in range(k_steps):  # fit's batches: perm[j*b:(j+1)*b] of this net's batch size b
                chunk = p[j * net.batch:(j + 1) * net.batch]
                perms[i, j * bs:j * bs + len(chunk)] = chunk
                lens[j][i] = len(chunk)
                # 2 * (1 / count) in float32, as autograd's mean backward rounds it
                wts[i, j * bs:j * bs + len(chunk)] = 2 * (torch.ones(()) / (len(chunk) * net.cfg.dim))
        return perms.to(self.X.device), wts.to(self.X.device), lens

    @torch.no_grad()
    def run_minibatch(self, bar) -> None:
        bs, k_steps = max(t.batch for t in self.nets), self.nets[0].steps_per_epoch
        gens, n, dg = [torch.Generator(device="cpu") for _ in self.nets], self.n_nets, self.st.dim
        for epoch in range(self.nets[0].epochs):
            perms, wts, lens = self._batches(gens, epoch, bs, k_steps)
            for j in range(k_steps):
                b = max(lens[j])  # this step's rows (the last batch of an epoch may be short)
                idx = perms[:, j * bs:j * bs + b]
                xb = torch.gather(self.X, 1, idx[:, :, None].expand(n, b, dg))
                hs, y = self.st.forward(xb, lens[j])
                d = y - xb
                self.st.backward(hs, y, d.mul_(wts[:, j * bs:j * bs + b, None] * self.dimmask), lens[j])
                self.adam.step()
            self.record(self.full_values(), epoch + 1, epoch)
            bar.update(n)
            if not any(self.alive):
                break

    def result(self, i: int) -> TrainResult:
        """Net ``i`` as ``fit`` would return it: best weights, resume state, diagnosis."""
        net, st = self.nets[i], self.st
        model = net.model
        if self.last_state[i] is not None:  # diverged: the weights when it did
            with torch.no_grad():
                for p, v in zip(model.parameters(), self.last_state[i]):
                    p.copy_(v)
        else:
            st.unstack_into(st.flat, i, model)
        last_sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
        opt = make_adam(model, net.lr)
        if self.adam.steps > 0 and self.last_state[i] is None:  # this net's Adam state, as fit would leave it
            ea, eq = st.net_state(self.adam.exp_avg, i, model), st.net_state(self.adam.exp_avg_sq, i, model)
            for p, a, q in zip(model.parameters(), ea, eq):
                opt.state[p] = {"step": torch.tensor(float(self.adam.steps)), "exp_avg": a, "exp_avg_sq": q}
        train_state = {"last_state_dict": last_sd, "optimizer": opt.state_dict(), "epoch": self.done[i],
                       "losses": list(self.losses[i]), "best_loss": self.best_loss[i],
                       "best_epoch": self.best_epoch[i]}
        if self.best_loss[i] < math.inf:
            st.unstack_into(self.best_flat, i, model)
        elif self.status[i] == "diverged":
            self.message[i] += "; no finite loss was ever reached: the weights are unusable"
        train_state["best_state_dict"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.eval()
        diag_status, diag_message, learnt = diagnose(model, net.x)
        if self.status[i] == "ok":
            self.status[i], self.message[i] = diag_status, diag_message
        return TrainResult(model=model, losses=self.losses[i], best_loss=self.best_loss[i],
                           best_epoch=self.best_epoch[i], epochs_done=self.done[i], status=self.status[i],
                           message=self.message[i], learnt=learnt, n_train=net.n, train_state=train_state)


def _train_group(group: _Group, device, bar, exact: bool) -> list:
    run = _GroupRun(group, device, exact)
    if group.nets[0].full_batch:
        run.run_full_batch(bar)
    else:
        run.run_minibatch(bar)
    return [run.result(i) for i in range(run.n_nets)]


def fit_many(models_or_configs: Sequence, datasets: Sequence, *, epochs, lr, batch_sizes=None, seeds,
             progress: bool = True, device=None, exact: bool = False) -> list:
    """Train N nets as :func:`train.fit` would, one per (model or config, data set, seed), together.

    models_or_configs: per net an ``nn.Sequential`` from :func:`model.build_model` (trained in place,
    like ``fit``) or a :class:`ModelConfig` (built as ``build_model(cfg, seed=seeds[i])``).
    datasets: per net an (n_i, D_i) tensor (or anything with an ``.x`` tensor, e.g. ``data.Data``).
    epochs, lr, batch_sizes: one value for all nets or one per net; batch_sizes None (full batch)
    or int per net, as ``fit``'s ``batch_size``; seeds: an int or one per net (the weights of a
    config, and fit's mini-batch order).
    device: for configs (default: the CPU); models train where they are (all on one device).
    exact: reproduce ``fit`` bit for bit (tests, checks): no padding (nets only share a group
    with nets of the same D, L and n), Adam per (net, tensor) and the output activation per net,
    so every kernel sees the tensors ``fit`` would; ~1.3x slower. Bit-exact on a 2-core AVX512
    Xeon (torch 2.14) except where a batched product has under 400 multiply-adds (torch's bmm then
    uses a plain loop, not BLAS: e.g. D=2 with n <= 3 rows, or n=4 with H < 50).
    Default (False): fastest; results differ from ``fit`` by float rounding — the fused Adam and
    the sigmoid/tanh kernels round an element in a tensor's scalar tail differently from one in
    its vector body, and padded products sum in another order — which Adam can amplify over many
    steps where a gradient component hovers around 0 (seen: up to 1e-2 in a weight after 200
    steps of a D=4, n=256 net; < 1e-5 on most).

    Returns one :class:`train.TrainResult` per net, in order: ``model`` an ordinary nn.Sequential
    holding its best weights (by full-set clean MSE, as ``fit``), ``losses`` per epoch, status,
    ``train_state`` (which ``fit(..., resume=...)`` accepts). Equal to N ``fit`` calls up to float
    rounding (see ``exact``).
    """
    items = list(models_or_configs)
    if not items:
        return []
    nets = _nets(items, list(datasets), epochs=epochs, lr=lr, batch_sizes=batch_sizes, seeds=seeds, device=device)
    dev = nets[0].x.device
    small = dev.type == "cpu" and max(sum(p.numel() for p in n.model.parameters()) for n in nets) < SMALL_MODEL
    before = torch.get_num_threads()
    results = [None] * len(nets)
    bar = tqdm(total=sum(n.epochs for n in nets), disable=not progress, desc=f"fit {len(nets)} nets", leave=False)
    try:
        if small and before > 1:
            torch.set_num_threads(1)  # tiny nets: one thread (see device.threads_for)
        for g in plan_groups(nets, pad=not exact):
            for net, res in zip(g.nets, _train_group(g, dev, bar, exact)):
                results[net.index] = res
    finally:
        bar.close()
        if small and before > 1:
            torch.set_num_threads(before)
    return results


def _nets(items: list, datasets: list, *, epochs, lr, batch_sizes, seeds, device) -> list:
    """One checked :class:`_Net` per (model or config, data set), all on one device."""
    n = len(items)
    if len(datasets) != n:
        raise KalsError(f"{len(datasets)} data sets for {n} nets")
    epochs_l = [check_int("epochs", e, 0) for e in _as_list(epochs, n, "epochs")]
    lr_l = [check_float("learning rate", v, 0.0, strict=True) for v in _as_list(lr, n, "lr")]
    bs_l = _as_list(batch_sizes, n, "batch_sizes")
    seed_l = [check_int("seed", s, 0) for s in _as_list(seeds, n, "seeds")]
    models = []
    for item, s in zip(items, seed_l):
        if isinstance(item, ModelConfig):
            m = build_model(item, seed=s)
            models.append(m.to(device) if device is not None else m)
        elif isinstance(item, nn.Sequential):
            models.append(item)
        else:
            raise KalsError(f"fit_many takes nn.Sequential models or ModelConfigs, got {type(item).__name__}")
    devs = {next(m.parameters()).device for m in models}
    if len(devs) != 1:
        raise KalsError(f"all nets must be on one device, got {sorted(map(str, devs))}")
    dev = devs.pop()
    nets = []
    for i, (m, data, e, r, b, s) in enumerate(zip(models, datasets, epochs_l, lr_l, bs_l, seed_l)):
        cfg = config_of(m)
        x = getattr(data, "x", data)
        if not isinstance(x, torch.Tensor):
            raise KalsError(f"data set {i} is not a tensor")
        x = x.to(device=dev, dtype=torch.float32)
        if x.ndim != 2 or x.shape[1] != cfg.dim:
            raise KalsError(f"data set {i} has shape {tuple(x.shape)} but net {i} expects (N, {cfg.dim})")
        if len(x) == 0:
            raise KalsError(f"data set {i} is empty")
        check_in_range(x, cfg.value_range, f"data set {i}")
        bs = len(x) if b is None else min(check_int("batch size", b, 1), len(x))
        nets.append(_Net(index=i, cfg=cfg, x=x, batch=bs, epochs=e, lr=r, seed=s, model=m))
    return nets


def train_many(datas, *, depths, width: int, seeds, epochs, lr: float = LR, batch_sizes=None, device="cpu",
               out_act: Optional[str] = None, progress: bool = False) -> list:
    """Many small plain-MSE MLPs trained together (:func:`ensemble.fit_many`: stacked weights, one
    Adam; the results equal one :func:`train_run` each up to float rounding) — for sweeps and the
    corner experiment. ``datas``, ``depths``, ``seeds``, ``epochs``, ``batch_sizes``: one per net
    (or one for all). Returns one :class:`Run` per net, in order."""
    n = max(len(v) if isinstance(v, (list, tuple)) else 1 for v in (datas, depths, seeds, epochs, batch_sizes))
    each = lambda v: list(v) if isinstance(v, (list, tuple)) else [v] * n  # noqa: E731
    datas, depths, seeds, epochs, batch_sizes = map(each, (datas, depths, seeds, epochs, batch_sizes))
    dev = device if isinstance(device, torch.device) else pick_device(device)
    cfgs = [make_config(d, depth, width, out_act, seed=s, lr=lr, epochs=e, batch_size=b)
            for d, depth, s, e, b in zip(datas, depths, seeds, epochs, batch_sizes)]
    results = fit_many([c.model for c in cfgs], [d.x for d in datas], epochs=epochs, lr=lr,
                       batch_sizes=batch_sizes, seeds=seeds, progress=progress, device=dev)
    return [Run(model=r.model, config=c, result=r, data=d) for r, c, d in zip(results, cfgs, datas)]
