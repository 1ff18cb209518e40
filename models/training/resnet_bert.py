"""The seed's architecture: small ResNet image encoder + small BERT text encoder +
per-finding cross-attention fusion, logits out (no saliency); and the ResNet alone.

Written for torch 1.13 (Debian python3-torch) and its TorchScript ONNX exporter (opset 17).

* ``ResNetSmall``: ResNet-10 layout (7x7/4 stem conv, one BasicBlock per stage, widths
  32-48-96-128, BatchNorm + ReLU, last stage dilated instead of strided: output stride 16),
  3 input channels (the grey image replicated, ImageNet mean/std), 224 -> 14x14 feature
  map (196 image tokens).
* ``BertSmall``: BERT embeddings (word + learned position (max 128) + token type, LayerNorm,
  dropout), post-LN Transformer layers (BERT layout, GELU), additive key mask
  ``(1 - attention_mask) * -10000`` exactly like BERT (a finite value: never NaN).
* ``FusionLayer`` x2: K learned per-finding queries; query self-attention, cross-attention
  over the 196 image tokens (+ learned 2-D positions), cross-attention over the S text
  tokens (key bias from attention_mask), FFN (pre-LN).  Per-finding linear head -> logits.
* Training-only heads (``aux=True``; not part of the exported graph): a per-image-token
  detector (supervised with the generator's finding / mimic regions on the 14x14 grid), a
  pooled-image head (average + max pooling) and a text [CLS] head; the first fusion layer's
  image attention is returned for an attention-guidance loss.  They make each encoder learn its own modality
  so the fusion is not dominated by one of them.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

NEG = -10000.0
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ============================================================================ image
class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1, dilation=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + idt)


class ResNetSmall(nn.Module):
    def __init__(self, widths=(32, 48, 96, 128)):
        super().__init__()
        w = widths
        # 7x7 stride-4 stem conv (instead of torchvision's 7x7/2 conv + 3x3/2 max-pool: on the
        # 2-core CPU the 112x112 stage costs more than the whole rest of the network)
        self.stem = nn.Sequential(nn.Conv2d(3, w[0], 7, 4, 3, bias=False), nn.BatchNorm2d(w[0]),
                                  nn.ReLU(inplace=True))                          # 224 -> 56
        self.layer1 = BasicBlock(w[0], w[0], 1)      # 56
        self.layer2 = BasicBlock(w[0], w[1], 2)      # 28
        self.layer3 = BasicBlock(w[1], w[2], 2)      # 14
        # output stride 16 (torchvision's replace_stride_with_dilation for the last stage):
        # layer4 keeps 14x14 and its second conv is dilated, so small findings keep a cell
        self.layer4 = BasicBlock(w[2], w[3], 1, dilation=2)   # 14
        self.out_channels = w[3]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():          # zero-init the last BN of each residual branch
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x):
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


# ============================================================================ text
class MHA(nn.Module):
    def __init__(self, d, heads, drop=0.0):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.drop = nn.Dropout(drop)

    def forward(self, xq, xkv, key_bias=None, return_attn: bool = False):
        n = xq.shape[0]
        q = self.q(xq).reshape(n, -1, self.h, self.dh).transpose(1, 2)
        k = self.k(xkv).reshape(n, -1, self.h, self.dh).transpose(1, 2)
        v = self.v(xkv).reshape(n, -1, self.h, self.dh).transpose(1, 2)
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.dh)
        if key_bias is not None:
            s = s + key_bias[:, None, None, :]
        p = torch.softmax(s, dim=-1)
        out = torch.matmul(self.drop(p), v).transpose(1, 2).reshape(n, -1, self.h * self.dh)
        if return_attn:
            return self.o(out), p.mean(1)            # head-averaged attention [N,Q,K]
        return self.o(out)


class BertLayer(nn.Module):
    """post-LN BERT layer: x = LN(x + Att(x)); x = LN(x + FFN(x))."""

    def __init__(self, d, heads, ffn, drop):
        super().__init__()
        self.att = MHA(d, heads, drop)
        self.ln1 = nn.LayerNorm(d, eps=1e-12)
        self.ff1, self.ff2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.ln2 = nn.LayerNorm(d, eps=1e-12)
        self.drop = nn.Dropout(drop)

    def forward(self, x, key_bias):
        x = self.ln1(x + self.drop(self.att(x, x, key_bias)))
        return self.ln2(x + self.drop(self.ff2(F.gelu(self.ff1(x)))))


class BertSmall(nn.Module):
    def __init__(self, vocab, d=96, heads=4, layers=2, ffn=384, max_len=128, type_vocab=2, drop=0.1):
        super().__init__()
        self.word = nn.Embedding(vocab, d, padding_idx=0)
        self.position = nn.Embedding(max_len, d)
        self.token_type = nn.Embedding(type_vocab, d)
        self.register_buffer("position_ids", torch.arange(max_len).unsqueeze(0), persistent=False)
        self.ln = nn.LayerNorm(d, eps=1e-12)
        self.drop = nn.Dropout(drop)
        self.layers = nn.ModuleList(BertLayer(d, heads, ffn, drop) for _ in range(layers))
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, input_ids, attention_mask, token_type_ids):
        s = input_ids.shape[1]
        x = self.word(input_ids) + self.position(self.position_ids[:, :s]) + self.token_type(token_type_ids)
        x = self.drop(self.ln(x))
        key_bias = (1.0 - attention_mask.to(x.dtype)) * NEG
        for L in self.layers:
            x = L(x, key_bias)
        return x


# ============================================================================ fusion
class FusionLayer(nn.Module):
    """pre-LN: q += SelfAtt(q); q += CrossAtt(q, image tokens); q += CrossAtt(q, text tokens);
    q += FFN(q).  Image and text have their own softmax, so neither modality can crowd the
    other out of a query's attention."""

    def __init__(self, d, heads, ffn, drop):
        super().__init__()
        self.ln_s, self.self_att = nn.LayerNorm(d), MHA(d, heads, drop)
        self.ln_qi, self.ln_img, self.cross_img = nn.LayerNorm(d), nn.LayerNorm(d), MHA(d, heads, drop)
        self.ln_qt, self.ln_txt, self.cross_txt = nn.LayerNorm(d), nn.LayerNorm(d), MHA(d, heads, drop)
        self.ln_f, self.ff1, self.ff2 = nn.LayerNorm(d), nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.drop = nn.Dropout(drop)

    def forward(self, q, img, txt, txt_bias):
        h = self.ln_s(q)
        q = q + self.drop(self.self_att(h, h))
        a, attn = self.cross_img(self.ln_qi(q), self.ln_img(img), None, return_attn=True)
        q = q + self.drop(a)
        q = q + self.drop(self.cross_txt(self.ln_qt(q), self.ln_txt(txt), txt_bias))
        return q + self.drop(self.ff2(F.gelu(self.ff1(self.ln_f(q))))), attn


def concat_pool(fmap):
    """[N,C,H,W] -> [N,2C]: global average and global max pooling side by side."""
    return torch.cat([fmap.mean((2, 3)), fmap.amax((2, 3))], dim=1)


class ResNetBert(nn.Module):
    def __init__(self, vocab, k=4, d=96, heads=4, text_layers=2, fusion_layers=2, grid=14, drop=0.1):
        super().__init__()
        self.k, self.d, self.grid = k, d, grid
        self.img = ResNetSmall()
        self.txt = BertSmall(vocab, d, heads, text_layers, 4 * d, drop=drop)
        self.img_proj = nn.Conv2d(self.img.out_channels, d, 1)
        self.img_pos = nn.Parameter(torch.randn(grid * grid, d) * 0.02)
        self.queries = nn.Parameter(torch.randn(k, d) * 0.1)
        self.fusion = nn.ModuleList(FusionLayer(d, heads, 2 * d, drop) for _ in range(fusion_layers))
        self.ln_out = nn.LayerNorm(d)
        self.head_w = nn.Parameter(torch.randn(k, d) * 0.02)
        self.head_b = nn.Parameter(torch.zeros(k))
        # training-only heads (not exported)
        self.aux_tok = nn.Conv2d(self.img.out_channels, k, 1)
        self.aux_img = nn.Linear(2 * self.img.out_channels, k)
        self.aux_txt = nn.Linear(d, k)

    def forward(self, pixel_values, input_ids, attention_mask, token_type_ids, aux: bool = False):
        n = pixel_values.shape[0]
        fmap = self.img(pixel_values)                                     # [N,C,14,14]
        it = self.img_proj(fmap).flatten(2).transpose(1, 2)               # [N,196,d]
        it = it + self.img_pos.unsqueeze(0)
        T = self.txt(input_ids, attention_mask, token_type_ids)           # [N,S,d]
        txt_bias = (1.0 - attention_mask.to(it.dtype)) * NEG
        q = self.queries.unsqueeze(0).expand(n, -1, -1)
        attn0 = None
        for i, L in enumerate(self.fusion):
            q, attn = L(q, it, T, txt_bias)
            if i == 0:
                attn0 = attn                                              # [N,K,196]
        q = self.ln_out(q)                                                # [N,K,d]
        logits = (q * self.head_w.unsqueeze(0)).sum(-1) + self.head_b     # [N,K]
        if aux:
            return (logits, self.aux_tok(fmap).flatten(2),                # [N,K,196]
                    self.aux_img(concat_pool(fmap)), self.aux_txt(T[:, 0]), attn0)
        return logits


class ImagePoolLayer(nn.Module):
    """FusionLayer without the text branch: q += SelfAtt(q); q += CrossAtt(q, image); q += FFN(q)."""

    def __init__(self, d, heads, ffn, drop):
        super().__init__()
        self.ln_s, self.self_att = nn.LayerNorm(d), MHA(d, heads, drop)
        self.ln_qi, self.ln_img, self.cross_img = nn.LayerNorm(d), nn.LayerNorm(d), MHA(d, heads, drop)
        self.ln_f, self.ff1, self.ff2 = nn.LayerNorm(d), nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.drop = nn.Dropout(drop)

    def forward(self, q, img):
        h = self.ln_s(q)
        q = q + self.drop(self.self_att(h, h))
        a, attn = self.cross_img(self.ln_qi(q), self.ln_img(img), None, return_attn=True)
        q = q + self.drop(a)
        return q + self.drop(self.ff2(F.gelu(self.ff1(self.ln_f(q))))), attn


class ImageOnly(nn.Module):
    """The same ResNet and the same per-finding query head as ResNetBert, without any text."""

    def __init__(self, k=4, d=96, heads=4, layers=2, grid=14, drop=0.1):
        super().__init__()
        self.img = ResNetSmall()
        self.img_proj = nn.Conv2d(self.img.out_channels, d, 1)
        self.img_pos = nn.Parameter(torch.randn(grid * grid, d) * 0.02)
        self.queries = nn.Parameter(torch.randn(k, d) * 0.1)
        self.pool = nn.ModuleList(ImagePoolLayer(d, heads, 2 * d, drop) for _ in range(layers))
        self.ln_out = nn.LayerNorm(d)
        self.head_w = nn.Parameter(torch.randn(k, d) * 0.02)
        self.head_b = nn.Parameter(torch.zeros(k))
        # training-only heads (not exported)
        self.aux_tok = nn.Conv2d(self.img.out_channels, k, 1)
        self.aux_img = nn.Linear(2 * self.img.out_channels, k)

    def forward(self, pixel_values, aux: bool = False):
        n = pixel_values.shape[0]
        fmap = self.img(pixel_values)                                     # [N,C,14,14]
        it = self.img_proj(fmap).flatten(2).transpose(1, 2) + self.img_pos.unsqueeze(0)
        q = self.queries.unsqueeze(0).expand(n, -1, -1)
        attn0 = None
        for i, L in enumerate(self.pool):
            q, attn = L(q, it)
            if i == 0:
                attn0 = attn
        q = self.ln_out(q)
        logits = (q * self.head_w.unsqueeze(0)).sum(-1) + self.head_b
        if aux:
            return logits, self.aux_tok(fmap).flatten(2), self.aux_img(concat_pool(fmap)), None, attn0
        return logits


class ExportResNetBert(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, pixel_values, input_ids, attention_mask, token_type_ids):
        return self.m(pixel_values, input_ids, attention_mask, token_type_ids)


class ExportImageOnly(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, pixel_values):
        return self.m(pixel_values)
