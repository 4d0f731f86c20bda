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

- :mod:`.plan`: which nets share a group (the cost model, the padding plan);
- :mod:`.stack`: a group's weights in one flat tensor, its batched forward and backward, its Adam;
- :mod:`.fit`: a group trained as ``fit`` trains one net; :func:`fit_many` and :func:`train_many`.
"""

from .fit import fit_many, train_many
from .plan import plan_groups

__all__ = ["fit_many", "plan_groups", "train_many"]
