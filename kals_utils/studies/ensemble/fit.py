"""Train a group of stacked nets as ``train.fit`` would train each (best weights, losses, status,
resume state), and the public entry points :func:`fit_many` and :func:`train_many`."""

import math
from typing import Optional, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from ...device import SMALL_MODEL, pick_device
from ...errors import KalsError, check_float, check_int
from ...model import ModelConfig, build_model, config_of
from ...pipeline import Run, make_config
from ...presets import LR
from ...train import TrainResult, check_in_range, diagnose, make_adam
from .plan import _Group, _Net, plan_groups
from .stack import _Stack, _StackAdam

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
