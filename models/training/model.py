"""Multimodal CXR triage model: CNN region tokens + small Transformer text encoder,
text-conditioned per-finding queries cross-attending over 14x14 image regions,
learned image/text gate per finding, sigmoid head.  Outputs probabilities [N,K]
and saliency [N,K,224,224] (the query attention, upsampled and max-normalised)."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

NEG = -1e4   # finite mask value: a fully masked key set gives a uniform softmax, never NaN


class MHA(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def forward(self, xq, xkv, key_mask=None):
        n = xq.shape[0]
        q = self.q(xq).reshape(n, -1, self.h, self.dh).transpose(1, 2)
        k = self.k(xkv).reshape(n, -1, self.h, self.dh).transpose(1, 2)
        v = self.v(xkv).reshape(n, -1, self.h, self.dh).transpose(1, 2)
        s = q @ k.transpose(-1, -2) / math.sqrt(self.dh)
        if key_mask is not None:
            s = s + (1.0 - key_mask)[:, None, None, :] * NEG
        a = torch.softmax(s, dim=-1)
        out = (a @ v).transpose(1, 2).reshape(n, -1, self.h * self.dh)
        return self.o(out)


class TextEncoder(nn.Module):
    def __init__(self, vocab, d=96, heads=4, layers=2, max_len=128, ffn=192, drop=0.1):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(max_len, d) * 0.02)
        self.ln0 = nn.LayerNorm(d)
        self.layers = nn.ModuleList()
        for _ in range(layers):
            self.layers.append(nn.ModuleDict(dict(
                ln1=nn.LayerNorm(d), att=MHA(d, heads), ln2=nn.LayerNorm(d),
                ff=nn.Sequential(nn.Linear(d, ffn), nn.GELU(), nn.Linear(ffn, d)))))
        self.drop = nn.Dropout(drop)
        self.lnf = nn.LayerNorm(d)

    def forward(self, ids, mask):
        s = ids.shape[1]
        x = self.ln0(self.emb(ids) + self.pos[:s].unsqueeze(0))
        x = self.drop(x)
        for L in self.layers:
            x = x + self.drop(L["att"](L["ln1"](x), L["ln1"](x), mask))
            x = x + self.drop(L["ff"](L["ln2"](x)))
        return self.lnf(x)


def conv(cin, cout, k=3, s=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, (k - 1) // 2 if k == 3 else 0, bias=False),
                         nn.BatchNorm2d(cout), nn.GELU())


class ImageEncoder(nn.Module):
    def __init__(self, d=96):
        super().__init__()
        self.net = nn.Sequential(
            conv(1, 24, 4, 4),          # 224 -> 56
            conv(24, 32), conv(32, 48, 3, 2),   # -> 28
            conv(48, 48), conv(48, 96, 3, 2),   # -> 14
            conv(96, d), nn.Conv2d(d, d, 1))
        self.pos = nn.Parameter(torch.randn(196, d) * 0.02)
        self.ln = nn.LayerNorm(d)

    def forward(self, x):
        f = self.net(x)                              # [N,d,14,14]
        t = f.flatten(2).transpose(1, 2)             # [N,196,d]
        return self.ln(t + self.pos.unsqueeze(0))


class TriageModel(nn.Module):
    def __init__(self, vocab, k=4, d=96, heads=4, size=224, grid=14):
        super().__init__()
        self.k, self.d, self.size, self.grid = k, d, size, grid
        self.img = ImageEncoder(d)
        self.txt = TextEncoder(vocab, d, heads)
        self.q_txt = nn.Parameter(torch.randn(k, d) * 0.1)
        self.txt_att = MHA(d, heads)
        self.q_img = nn.Parameter(torch.randn(k, d) * 0.1)
        self.cond = nn.Linear(d, d)
        self.wq, self.wk, self.wv = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.ln_v = nn.LayerNorm(d)
        self.ln_t = nn.LayerNorm(d)
        self.gate = nn.Linear(2 * d, 1)
        self.gate_bias = nn.Parameter(torch.zeros(k))
        self.h1 = nn.Linear(2 * d, d)
        self.h2_w = nn.Parameter(torch.randn(k, d) * 0.05)
        self.h2_b = nn.Parameter(torch.zeros(k))
        self.drop = nn.Dropout(0.1)
        self.aux_tok = nn.Linear(d, k)   # training-only: per-region sign detector
        self.aux_txt_w = nn.Parameter(torch.randn(k, d) * 0.05)   # training-only: text-only head
        self.aux_txt_b = nn.Parameter(torch.zeros(k))

    def forward(self, image, input_ids, attention_mask, saliency: bool = True, aux: bool = False):
        n = image.shape[0]
        mask = attention_mask.to(torch.float32)
        T = self.txt(input_ids, mask)                                   # [N,S,d]
        qt = self.q_txt.unsqueeze(0).expand(n, -1, -1)
        t_k = self.ln_t(self.txt_att(qt, T, mask))                      # [N,K,d]
        R = self.img(image)                                             # [N,196,d]
        q = self.q_img.unsqueeze(0) + self.cond(t_k)                    # [N,K,d]
        s = self.wq(q) @ self.wk(R).transpose(1, 2) / math.sqrt(self.d) * 2.0  # [N,K,196]
        attn = torch.softmax(s, dim=-1)
        v_k = self.ln_v(attn @ self.wv(R))                              # [N,K,d]
        g = torch.sigmoid(self.gate(torch.cat([v_k, t_k], -1)).squeeze(-1) + self.gate_bias)  # [N,K]
        h = torch.cat([g.unsqueeze(-1) * v_k, (1 - g).unsqueeze(-1) * t_k], -1)
        h = self.drop(F.gelu(self.h1(h)))                               # [N,K,d]
        logits = (h * self.h2_w.unsqueeze(0)).sum(-1) + self.h2_b       # [N,K]
        prob = torch.sigmoid(logits)
        if aux:
            return prob, attn, logits, self.aux_tok(R), (t_k * self.aux_txt_w).sum(-1) + self.aux_txt_b
        if not saliency:
            return prob, None, logits
        sal = attn.reshape(-1, 1, self.grid, self.grid)
        sal = F.interpolate(sal, size=(self.size, self.size), mode="bilinear", align_corners=False)
        sal = sal.reshape(n, self.k, self.size, self.size)
        sal = sal / sal.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12)
        return prob, sal, logits


class ExportWrapper(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, image, input_ids, attention_mask):
        p, s, _ = self.m(image, input_ids, attention_mask)
        return p, s
