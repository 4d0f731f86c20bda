"""The stacked weights of one group of nets in one flat tensor: the batched forward (``baddbmm``), the
hand-written backward, keeping the best weights of some nets, and one Adam over the stack."""

import math

import torch
from torch import nn

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
