"""Training loop with modality dropout using exactly the manifest's ablations."""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from model import TriageModel
from preprocess import pad_batch

CLS, SEP = 2, 3


def text_masked(n, s=2):
    """manifest ablation: ids = [CLS][SEP] then [PAD]; mask 1 for CLS and SEP only."""
    ids = np.zeros((n, max(s, 2)), np.int64)
    ids[:, 0], ids[:, 1] = CLS, SEP
    mask = np.zeros_like(ids)
    mask[:, :2] = 1
    return ids, mask


def batch_tensors(images, id_lists, idx, mode="fused"):
    x = torch.from_numpy(images[idx]).unsqueeze(1)
    if mode == "imageBlanked":
        x = torch.zeros_like(x)
    if mode == "textMasked":
        ids, mask = text_masked(len(idx))
    else:
        ids, mask = pad_batch([id_lists[i] for i in idx])
    return x, torch.from_numpy(ids), torch.from_numpy(mask)


@torch.no_grad()
def predict(model, images, id_lists, mode="fused", bs=128):
    model.eval()
    out = []
    for s in range(0, len(images), bs):
        idx = np.arange(s, min(s + bs, len(images)))
        x, ids, mask = batch_tensors(images, id_lists, idx, mode)
        p, _, _ = model(x, ids, mask, saliency=False)
        out.append(p.numpy())
    return np.concatenate(out)


def train(images, id_lists, labels, vocab, regions=None, epochs=9, bs=64, lr=3e-3, seed=0,
          p_text_mask=0.15, p_image_blank=0.25, log=print, val=None):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = TriageModel(vocab)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    n = len(images)
    steps = epochs * (n // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    y_all = torch.from_numpy(labels.astype(np.float32))
    t0 = time.time()
    for ep in range(epochs):
        model.train()
        perm = rng.permutation(n)
        tot = 0.0
        for b in range(n // bs):
            idx = perm[b * bs:(b + 1) * bs]
            x = torch.from_numpy(images[idx]).unsqueeze(1)
            ids, mask = pad_batch([id_lists[i] for i in idx])
            r = rng.random(len(idx))
            tm = r < p_text_mask
            ib = (r >= p_text_mask) & (r < p_text_mask + p_image_blank)
            ids[tm] = 0
            mask[tm] = 0
            ids[tm, 0], ids[tm, 1] = CLS, SEP
            mask[tm, :2] = 1
            x[torch.from_numpy(ib)] = 0.0
            _, attn, logits, tok, txt_logits = model(x, torch.from_numpy(ids), torch.from_numpy(mask), aux=True)
            loss = F.binary_cross_entropy_with_logits(logits, y_all[idx])
            # direct text supervision (text-only head, not exported) against modality competition
            loss = loss + 0.5 * F.binary_cross_entropy_with_logits(txt_logits[torch.from_numpy(~tm)], y_all[idx][torch.from_numpy(~tm)])
            if regions is not None:
                reg = torch.from_numpy(regions[idx].astype(np.float32))        # [B,K,196]
                keep = torch.from_numpy(~ib).float()
                tl = F.binary_cross_entropy_with_logits(tok.transpose(1, 2), reg, reduction="none")
                loss = loss + 0.5 * (tl.mean((1, 2)) * keep).sum() / keep.sum().clamp_min(1)
                has = (reg.sum(-1) > 0).float() * keep[:, None]
                al = -torch.log((attn * reg).sum(-1) + 1e-4)
                loss = loss + 0.2 * (al * has).sum() / has.sum().clamp_min(1)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot += loss.item()
        msg = f"epoch {ep + 1}/{epochs} loss {tot / (n // bs):.4f} {time.time() - t0:.0f}s"
        if val is not None and ((ep + 1) % 3 == 0 or ep + 1 == epochs):
            from evaluate import auroc_table
            vi, vids, vy = val
            msg += " val macro AUROC " + " ".join(
                f"{m}={auroc_table(vy, predict(model, vi, vids, m))['macro']:.3f}"
                for m in ("fused", "textMasked", "imageBlanked"))
        log(msg)
    model.eval()
    return model, time.time() - t0
