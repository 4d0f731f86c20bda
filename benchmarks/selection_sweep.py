"""Exploration behind the selection rule (issue #29): train the improved recipe WITHOUT a stopping rule
on the first 1,000 Fashion-MNIST images (a seeded 900/100 split; L=10, H=500, batches of 100, lr 1e-3,
fp32, one thread), keep the weights every K updates, then measure every snapshot: the truth (classifier
Fréchet distance and memorised fraction of 300 chains of the restart sampler at 5 and 100 steps, as
studies.versus measures them) beside cheap candidate signals on a 256-chain check walk (c5/c15: 5 or
15 applications of f): its memorised fraction, pixel and random-CNN Fréchet distance to training
images, sharpness ratio, distinct nearest images, and a Meehan-style Mann-Whitney z of sample-to-train
against held-out-to-train distances.

    python benchmarks/selection_sweep.py SEED UPDATES K [fp32|bf16]   -> /work/explore/sweep_s{SEED}_{prec}.json

Committed output: docs/results/selection_sweep_s0.json (`selection_sweep.py 0 15000 500`: 30 snapshots,
every 495 updates; Intel Xeon with AMX, 2 shared cores). An exploration script kept as it was run, with
its hard-coded paths (``root`` below must hold the Fashion-MNIST IDX files).
"""
"""Exploration for #29: train improved without stopping, snapshot every K updates, measure truth
(classifier FD, memorised on 300 samples at 5/100 steps) and cheap proxies for each snapshot."""
import sys, time, json, math
from dataclasses import replace
sys.path.insert(0, "/work/main")
import torch
torch.set_num_threads(1)
from kals_utils.studies.versus import first_images, measure, heldout_sets
from kals_utils.measures.evaluate import classifier_for
from kals_utils.pipeline import train_run, sample_run, Run
from kals_utils.recipes import IMPROVED, split_holdout
from kals_utils.sample import data_start, kaleidoscope
from kals_utils.measures.prdc import memorization, frechet_distance
from kals_utils.measures.features import embedder
from kals_utils.neighbours import nearest_neighbours
from kals_utils.data import Data

seed = int(sys.argv[1]); U = int(sys.argv[2]); K = int(sys.argv[3]); prec = sys.argv[4] if len(sys.argv) > 4 else "fp32"
root = "/work/explore/fm"
data = first_images("fashion-mnist", 1000, root=root)
keep, held = split_holdout(1000, 0.1, seed)
dk = Data(x=data.x[keep], value_range=data.value_range, name=data.name, image_shape=data.image_shape,
          labels=data.labels[keep], class_names=data.class_names)
xh = data.x[held]
clf = classifier_for(data_config := None, data_root=root) if False else None
from kals_utils.measures.features import load_or_train_classifier
snaps = []
t0 = {}
per_epoch = math.ceil(900 / 100)
every_ep = max(1, K // per_epoch)
def cb(epoch, loss):
    if (epoch + 1) % every_ep == 0:
        snaps.append(((epoch + 1) * per_epoch, time.process_time() - t0["t"],
                      {k: v.detach().clone() for k, v in run_holder["m"].state_dict().items()}))
run_holder = {}
from kals_utils.model import build_model
def on_start():
    t0["t"] = time.process_time()
rec = replace(IMPROVED, holdout=0.0)
epochs = U // per_epoch
# build model ourselves to access it in callback
from kals_utils.pipeline import make_config
cfg = make_config(dk, 10, 500)
m = build_model(cfg.model, seed=seed)
run_holder["m"] = m
run = train_run(dk, depth=10, width=500, lr=1e-3, batch_size=100, epochs=epochs, seed=seed, device="cpu",
                precision=prec, recipe=rec, progress=False, model=m, on_start=on_start, callback=cb)
print("trained", run.result.epochs_done, "epochs", time.process_time() - t0["t"], "cpu s", flush=True)
# classifier
import kals_utils.studies.versus as V
held_clf = None
from kals_utils.measures.evaluate import classifier_for as cf
classifier = cf(run.config, data_root=root)
rows = []
starts = data_start(dk.x, 256, scale=IMPROVED.start_scale, seed=12345, value_range=(-1, 1))
base_mem = memorization(xh, dk.x).fraction
rcnn = embedder("randcnn", image_shape=data.image_shape, value_range=data.value_range)
ftr_r = rcnn(dk.x)
def sharp(x):
    im = x.reshape(len(x), 28, 28)
    gx = im[:, :, 1:] - im[:, :, :-1]; gy = im[:, 1:, :] - im[:, :-1, :]
    return float((gx.pow(2).mean(dim=(1, 2)) + gy.pow(2).mean(dim=(1, 2))).sqrt().mean())
sh_train = sharp(dk.x)
dh, _ = nearest_neighbours(xh, dk.x)
for upd, cpu, state in snaps:
    m.load_state_dict(state); m.eval()
    row = dict(seed=seed, updates=upd, cpu_s=round(cpu, 1), base_mem=base_mem)
    for steps in (5, 100):
        w = sample_run(run, chains=300, steps=steps, seed=seed, record=0)
        r = measure(w.final.cpu(), data, classifier=classifier, seed=seed)
        row[f"fd{steps}"] = r["fd_classifier"]; row[f"mem{steps}"] = r["memorized"]; row[f"cov{steps}"] = r["clf_coverage"]
    # proxies: check walk of 15 steps from fixed starts
    with torch.no_grad():
        z = starts.clone(); 
        for t in range(15):
            z = m(z)
            if t == 4: z5 = z.clone()
    for tag, s in (("c15", z), ("c5", z5)):
        mm = memorization(s, dk.x)
        row[f"{tag}_mem"] = mm.fraction
        row[f"{tag}_pxfd"] = frechet_distance(dk.x[:256], s)
        row[f"{tag}_rcfd"] = frechet_distance(ftr_r, rcnn(s))
        row[f"{tag}_sharp"] = sharp(s) / sh_train
        ds, idx = nearest_neighbours(s, dk.x)
        row[f"{tag}_distinct"] = len(torch.unique(idx)) / len(s)
        # Meehan-like: Mann-Whitney z of NN dist samples vs heldout
        a, b = ds.double(), dh.double()
        allv = torch.cat([a, b]); ranks = allv.argsort().argsort().double() + 1
        U1 = ranks[:len(a)].sum() - len(a) * (len(a) + 1) / 2
        mu = len(a) * len(b) / 2; sd = math.sqrt(len(a) * len(b) * (len(a) + len(b) + 1) / 12)
        row[f"{tag}_Z"] = float((U1 - mu) / sd)
    # heldout denoising-loss like old rule? skip
    rows.append(row)
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
json.dump(rows, open(f"/work/explore/sweep_s{seed}_{prec}.json", "w"), indent=1)
