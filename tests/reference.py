"""Independent reference implementations (plain torch, straight from the definitions) for the
known-answer checks of end-to-end tests: a number a command prints must equal the one computed here
from the samples it wrote, not merely lie in [0, 1]."""
import torch


def naive_prdc(real, fake, k):
    """Precision, recall, density, coverage (Naeem et al. 2020 reference code), with torch.cdist."""
    real, fake = real.double(), fake.double()
    d_rr, d_ff, d_rf = torch.cdist(real, real), torch.cdist(fake, fake), torch.cdist(real, fake)
    r_real = d_rr.kthvalue(k + 1, dim=1).values    # k+1: the zero distance to itself comes first
    r_fake = d_ff.kthvalue(k + 1, dim=1).values
    inside = d_rf < r_real[:, None]                # (real, fake)
    return {"precision": inside.any(dim=0).double().mean().item(),
            "recall": (d_rf < r_fake[None, :]).any(dim=1).double().mean().item(),
            "density": inside.sum().item() / (k * len(fake)),
            "coverage": (d_rf.min(dim=1).values < r_real).double().mean().item()}


def naive_memorized(samples, train, ratio=1 / 3):
    """Fraction of samples whose nearest training sample is closer than ``ratio`` x the second nearest."""
    d = torch.cdist(samples.double(), train.double()).topk(2, dim=1, largest=False).values
    return (d[:, 0] < ratio * d[:, 1]).double().mean().item()


def naive_nearest(samples, train):
    """(RMS distance to the nearest training point, its index) per sample."""
    d = torch.cdist(samples.double(), train.double()) / train.shape[1] ** 0.5
    return d.min(dim=1)
