"""AUROC (Mann-Whitney, ties averaged) and F1-optimal thresholds."""
import numpy as np
from scipy.stats import rankdata

from generator import FINDINGS


def auroc(y, p):
    y = np.asarray(y)
    pos, neg = y == 1, y == 0
    if pos.sum() == 0 or neg.sum() == 0:
        return float("nan")
    r = rankdata(p)
    return float((r[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * neg.sum()))


def auroc_table(Y, P):
    t = {c: auroc(Y[:, k], P[:, k]) for k, c in enumerate(FINDINGS)}
    t["macro"] = float(np.mean([t[c] for c in FINDINGS]))
    return t


def best_f1_threshold(y, p):
    best = (0.0, 0.5)
    for t in np.unique(np.round(p, 4)):
        pred = p >= t
        tp = (pred & (y == 1)).sum()
        fp = (pred & (y == 0)).sum()
        fn = (~pred & (y == 1)).sum()
        f1 = 2 * tp / max(2 * tp + fp + fn, 1)
        if f1 > best[0]:
            best = (f1, float(t))
    return best
