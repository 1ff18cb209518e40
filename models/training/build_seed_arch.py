"""Build the seed-architecture models (ResNet + BERT + cross-attention fusion, and the
ResNet alone) on the reference model's synthetic generator; torch 1.13 / pydicom 2.3 /
no Python `tokenizers` (Debian packages), TorchScript ONNX exporter, opset 17.

    /usr/bin/python3 models/training/build_seed_arch.py --arch resnet-bert [--seed N] [--reuse]
    /usr/bin/python3 models/training/build_seed_arch.py --arch image-only  [--seed N] [--reuse]
    /usr/bin/python3 models/training/build_seed_arch.py --only-testset [--test-seed2 2025]

Steps: generate (or with --reuse load) train/validation data of --seed (git-ignored
models/training/.data/), tokenise with the reference WordPiece vocabulary
(models/cxr-triage/tokenizer.json, pure Python, checked against the ids in
models/testset/index.json and against Node's @huggingface/tokenizers), train with modality
dropout using the manifest's ablations, choose F1-optimal thresholds on validation,
evaluate on models/testset and on a second test set of --test-seed2 (written under
.data/testset-<seed2>/ as DICOM + FHIR + index.json and read back from those files),
export ONNX (opset 17, dynamic N and S), check PyTorch vs onnxruntime-node
(models/training/parity.mjs), and write model.onnx, manifest.json (schema 2), reference/,
README.md into --out (default models/cxr-<arch>).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from multiprocessing import Pool
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import generator as G  # noqa: E402
import preprocess as PP  # noqa: E402
from evaluate import auroc_table, best_f1_threshold  # noqa: E402
from resnet_bert import (IMAGENET_MEAN, IMAGENET_STD, ExportImageOnly, ExportResNetBert,  # noqa: E402
                         ImageOnly, ResNetBert)
from wordpiece import WordPieceTokenizer  # noqa: E402

SPLITS = {"train": 0, "val": 1, "test": 2}
SIZE = 224
GRID = 14
CFG01 = dict(PP.IMAGE_CFG, size=SIZE, normalize={"mean": 0.0, "std": 1.0})   # windowed image in [0,1]
REF_TOKENIZER = ROOT / "models" / "cxr-triage" / "tokenizer.json"
REF_MANIFEST = ROOT / "models" / "cxr-triage" / "manifest.json"
DATA = HERE / ".data"
MODES = ("fused", "textMasked", "imageBlanked")
MEAN = np.array(IMAGENET_MEAN, np.float32)
STD = np.array(IMAGENET_STD, np.float32)
ABLATIONS = {
    "textMasked": "input_ids = [CLS] [SEP] then [PAD]…; attention_mask = 1 for CLS and SEP, 0 after; "
                  "token_type_ids all 0",
    "imageBlanked": "pixel_values tensor all zeros (after the ImageNet normalisation)",
}


def log(*a):
    print(*a, flush=True)


# ============================================================================ data
def region_grid(c, g=GRID):
    """[K, g*g] uint8: grid cells overlapping each finding's (or mimic's) image sign."""
    rows, cols = c.meta["Rows"], c.meta["Columns"]
    out = np.zeros((len(G.FINDINGS), g, g), np.uint8)
    for k, code in enumerate(G.FINDINGS):
        b = c.regions.get(code)
        if b:
            x0, y0, x1, y1 = b
            gx0, gx1 = int(x0 * g / cols), int(np.ceil(x1 * g / cols))
            gy0, gy1 = int(y0 * g / rows), int(np.ceil(y1 * g / rows))
            out[k, gy0:max(gy1, gy0 + 1), gx0:max(gx1, gx0 + 1)] = 1
    return out.reshape(len(G.FINDINGS), g * g)


def _gen(job):
    seed, split, i, cid, size_range = job
    c = G.make_case(seed, split, i, cid, size_range)
    img = PP.preprocess_array(c.pixels, c.meta, CFG01)
    y = np.array([c.labels[k] for k in G.FINDINGS], np.float32)
    return img, PP.render_text(c.resources), y, region_grid(c)


def generate(seed, split, n, prefix, size_range, pool):
    jobs = [(seed, SPLITS[split], i, f"{prefix}{i + 1:04d}", size_range) for i in range(n)]
    res = pool.map(_gen, jobs, chunksize=32)
    return (np.stack([r[0] for r in res]).astype(np.float32), [r[1] for r in res],
            np.stack([r[2] for r in res]), np.stack([r[3] for r in res]))


def to_pixel_values(x01):
    """[N,H,W] windowed [0,1] float32 -> [N,3,H,W]: grey replicated, ImageNet mean/std."""
    x = np.repeat(np.asarray(x01, np.float32)[:, None], 3, axis=1)
    return ((x - MEAN[None, :, None, None]) / STD[None, :, None, None]).astype(np.float32)


def make_testset(seed, out, tok, command):
    """seed's test split (300 cases, matrix 128-160, like models/testset) as DICOM + FHIR."""
    from build import write_testset        # the reference build's writer (same format)
    cases = [G.make_case(seed, SPLITS["test"], i, f"case{i + 1:04d}", (128, 160)) for i in range(300)]
    texts = [PP.render_text(c.resources) for c in cases]
    write_testset(cases, texts, [tok.encode(t, 128) for t in texts], seed, out, command)
    log(f"wrote test set seed {seed}: {out}")


def load_testset(tdir, tok):
    """read a test set back from its files: DICOM -> image, FHIR bundle -> text -> ids."""
    index = json.loads((tdir / "index.json").read_text())
    assert index["findings"] == G.FINDINGS
    xs, ids, ys, texts, cids = [], [], [], [], []
    for c in index["cases"]:
        xs.append(PP.preprocess_dicom(tdir / c["dicom"], CFG01))
        bundle = json.loads((tdir / c["fhir"]).read_text())
        text = PP.render_text([e["resource"] for e in bundle["entry"]])
        assert text == c["text"], (c["id"], text, c["text"])
        t = tok.encode(text, 128)
        assert t == c["inputIds"], c["id"]
        ids.append(t); texts.append(text); cids.append(c["id"])
        ys.append([c["labels"][k] for k in G.FINDINGS])
    return np.stack(xs), ids, np.array(ys, np.float32), texts, cids, index


def node_token_check(tok_path, texts, py_ids, tag):
    tmp = DATA / "tokcheck"
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / f"{tag}.texts.json").write_text(json.dumps(texts))
    subprocess.run(["node", str(HERE / "tokens.mjs"), str(tok_path), str(tmp / f"{tag}.texts.json"),
                    str(tmp / f"{tag}.ids.json"), "128"], check=True, cwd=ROOT)
    node_ids = json.loads((tmp / f"{tag}.ids.json").read_text())
    bad = sum(a != b for a, b in zip(py_ids, node_ids))
    log(f"tokens {tag}: Python WordPiece vs Node @huggingface/tokenizers: {len(texts) - bad}/{len(texts)} equal")
    assert bad == 0 and len(node_ids) == len(py_ids)
    return len(texts)


# ============================================================================ batches / training
CLS, SEP = 2, 3


def pad_batch(id_lists, length=None):
    ids, mask = PP.pad_batch(id_lists, length)
    return ids, mask, np.zeros_like(ids)


def text_masked(n, s=2):
    ids = np.zeros((n, max(s, 2)), np.int64)
    ids[:, 0], ids[:, 1] = CLS, SEP
    mask = np.zeros_like(ids)
    mask[:, :2] = 1
    return ids, mask, np.zeros_like(ids)


def run_model(model, arch, x01, id_lists, mode):
    px = torch.from_numpy(to_pixel_values(x01))
    if mode == "imageBlanked":
        px = torch.zeros_like(px)
    if arch == "image-only":
        return model(px)
    ids, mask, tt = text_masked(len(x01)) if mode == "textMasked" else pad_batch(id_lists)
    return model(px, torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(tt))


@torch.no_grad()
def predict_logits(model, arch, X, id_lists, mode="fused", bs=100):
    model.eval()
    out = []
    for s in range(0, len(X), bs):
        sl = slice(s, min(s + bs, len(X)))
        out.append(run_model(model, arch, X[sl], id_lists[sl] if id_lists is not None else None, mode).numpy())
    return np.concatenate(out)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def evaluate_all(model, arch, X, ids, Y):
    modes = MODES if arch == "resnet-bert" else ("fused", "imageBlanked")
    return {m: auroc_table(Y, sigmoid(predict_logits(model, arch, X, ids, m))) for m in modes}


def train(arch, X, ids, Y, R, vocab, epochs, seed, val, bs=64, lr=2e-3, p_text_mask=0.15, p_image_blank=0.20):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = ResNetBert(vocab) if arch == "resnet-bert" else ImageOnly()
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "pos" not in n and "img_pos" not in n
             and "queries" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim > 1 and "pos" not in n
                                                                  and "img_pos" not in n and "queries" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr)
    n = len(X)
    steps = epochs * (n // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    Yt = torch.from_numpy(Y.astype(np.float32))
    Rt = torch.from_numpy(R.astype(np.float32))
    t0, c0 = time.time(), time.process_time()
    for ep in range(epochs):
        model.train()
        perm = rng.permutation(n)
        tot = 0.0
        for b in range(n // bs):
            idx = np.sort(perm[b * bs:(b + 1) * bs])
            px = torch.from_numpy(to_pixel_values(X[idx]))
            y = Yt[idx]
            ib = np.zeros(len(idx), bool)
            tm = np.zeros(len(idx), bool)
            if arch == "resnet-bert":
                ids_b, mask, tt = pad_batch([ids[i] for i in idx])
                r = rng.random(len(idx))
                tm = r < p_text_mask                                      # manifest ablation: text masked
                ib = (r >= p_text_mask) & (r < p_text_mask + p_image_blank)   # image blanked
                ids_b[tm] = 0
                mask[tm] = 0
                ids_b[tm, 0], ids_b[tm, 1] = CLS, SEP
                mask[tm, :2] = 1
                px[torch.from_numpy(ib)] = 0.0
                logits, tok, img_l, txt_l, attn = model(px, torch.from_numpy(ids_b), torch.from_numpy(mask),
                                                        torch.from_numpy(tt), aux=True)
            else:
                logits, tok, img_l, txt_l, attn = model(px, aux=True)
            keep_i = torch.from_numpy(~ib)
            loss = F.binary_cross_entropy_with_logits(logits, y)
            if keep_i.any():
                # image sign detector per 14x14 cell (finding or mimic present), training only
                tl = F.binary_cross_entropy_with_logits(tok[keep_i], Rt[idx][keep_i])
                loss = loss + 0.5 * tl
                if img_l is not None:
                    loss = loss + 0.5 * F.binary_cross_entropy_with_logits(img_l[keep_i], y[keep_i])
                if attn is not None:
                    # attention guidance: each finding's query attends to its sign's cells
                    reg = Rt[idx]
                    has = (reg.sum(-1) > 0).float() * keep_i.float()[:, None]
                    al = -torch.log((attn * reg).sum(-1) + 1e-4)
                    loss = loss + 0.2 * (al * has).sum() / has.sum().clamp_min(1)
            if txt_l is not None:
                keep_t = torch.from_numpy(~tm)
                loss = loss + 0.5 * F.binary_cross_entropy_with_logits(txt_l[keep_t], y[keep_t])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot += loss.item()
        msg = f"epoch {ep + 1}/{epochs} loss {tot / (n // bs):.4f} {time.time() - t0:.0f}s"
        if val is not None and ((ep + 1) % 3 == 0 or ep + 1 == epochs):
            vx, vids, vy = val
            msg += " val macro AUROC " + " ".join(f"{m}={t['macro']:.3f}" for m, t in
                                                  evaluate_all(model, arch, vx, vids, vy).items())
        log(msg)
    model.eval()
    log(f"training: wall {time.time() - t0:.0f}s, process CPU time {time.process_time() - c0:.0f}s")
    return model, time.time() - t0, time.process_time() - c0


# ============================================================================ export / parity
def export_onnx(model, arch, path):
    model.eval()
    g = torch.Generator().manual_seed(1)
    px = torch.randn(2, 3, SIZE, SIZE, generator=g)
    if arch == "resnet-bert":
        w = ExportResNetBert(model).eval()
        ids = torch.randint(5, 300, (2, 17), generator=g)
        ids[:, 0] = CLS
        ids[:, -1] = SEP
        mask = torch.ones_like(ids)
        tt = torch.zeros_like(ids)
        args = (px, ids, mask, tt)
        names = ["pixel_values", "input_ids", "attention_mask", "token_type_ids"]
        dyn = {"pixel_values": {0: "N"}, "input_ids": {0: "N", 1: "S"}, "attention_mask": {0: "N", 1: "S"},
               "token_type_ids": {0: "N", 1: "S"}, "logits": {0: "N"}}
    else:
        w = ExportImageOnly(model).eval()
        args = (px,)
        names = ["pixel_values"]
        dyn = {"pixel_values": {0: "N"}, "logits": {0: "N"}}
    with torch.no_grad():
        torch.onnx.export(w, args, str(path), opset_version=17, input_names=names, output_names=["logits"],
                          dynamic_axes=dyn, do_constant_folding=True, export_params=True)
    import onnx
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    # no provenance (doc strings / absolute paths) in the shipped file
    for node in m.graph.node:
        node.doc_string = ""
    m.graph.doc_string = ""
    m.doc_string = ""
    del m.metadata_props[:]
    # the exporter names the K dimension symbolically ("Addlogits_dim_1"); it is fixed: [N, 4]
    dims = m.graph.output[0].type.tensor_type.shape.dim
    assert len(dims) == 2
    dims[0].Clear(); dims[0].dim_param = "N"
    dims[1].Clear(); dims[1].dim_value = len(G.FINDINGS)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    got = [i.name for i in m.graph.input], [o.name for o in m.graph.output]
    assert got == (names, ["logits"]), got
    opset = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0]
    assert opset == 17, opset
    return path


def write_parity(model, arch, X, id_lists, out):
    """PyTorch inputs/outputs for the Node onnxruntime check: several N and S, ragged padding,
    both ablations inside a batch, and real test-set cases."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    g = np.random.default_rng(0)
    cases = []

    def add(name, px, ids=None, mask=None, tt=None):
        with torch.no_grad():
            if arch == "resnet-bert":
                y = model(torch.from_numpy(px), torch.from_numpy(ids), torch.from_numpy(mask),
                          torch.from_numpy(tt)).numpy()
            else:
                y = model(torch.from_numpy(px)).numpy()
        spec = {"name": name, "inputs": {}, "outputs": {}}
        arrays = [("pixel_values", px, "float32", "f32")]
        if arch == "resnet-bert":
            arrays += [("input_ids", ids, "int64", "i64"), ("attention_mask", mask, "int64", "i64"),
                       ("token_type_ids", tt, "int64", "i64")]
        for nm, a, dt, ext in arrays:
            f = f"{name}.{nm}.{ext}"
            a.astype("<f4" if dt == "float32" else "<i8").tofile(out / f)
            spec["inputs"][nm] = {"file": f, "dtype": dt, "dims": list(a.shape)}
        y.astype("<f4").tofile(out / f"{name}.logits.f32")
        spec["outputs"]["logits"] = {"file": f"{name}.logits.f32", "dims": list(y.shape)}
        cases.append(spec)

    for n, s in [(1, 2), (1, 128), (2, 37), (5, 64), (8, 11), (3, 100)]:
        px = g.normal(0, 1, (n, 3, SIZE, SIZE)).astype(np.float32)
        ids = g.integers(5, 800, (n, s)).astype(np.int64)
        ids[:, 0] = CLS
        mask = np.ones((n, s), np.int64)
        for i in range(n):                                  # ragged padding
            L = int(g.integers(2, s + 1)) if i > 0 else s
            ids[i, L - 1] = SEP
            ids[i, L:] = 0
            mask[i, L:] = 0
        if n == 5:                                          # both ablations inside one batch
            px[1] = 0.0
            ids[2] = 0; ids[2, 0] = CLS; ids[2, 1] = SEP; mask[2] = 0; mask[2, :2] = 1
        add(f"random_N{n}_S{s}", px, ids, mask, np.zeros_like(ids))
    # real test-set cases, padded to the longest (ragged), and both ablations on them
    k = 24
    px = to_pixel_values(X[:k])
    ids, mask, tt = pad_batch(id_lists[:k])
    add(f"testset_N{k}_S{ids.shape[1]}", px, ids, mask, tt)
    ids_m, mask_m, tt_m = text_masked(k, 2)
    add(f"testset_N{k}_textMasked", px, ids_m, mask_m, tt_m)
    ids_m, mask_m, tt_m = text_masked(k, 40)
    add(f"testset_N{k}_textMasked_S40", px, ids_m, mask_m, tt_m)
    add(f"testset_N{k}_imageBlanked", np.zeros_like(px), ids, mask, tt)
    (out / "parity.json").write_text(json.dumps({"arch": arch, "cases": cases}, indent=1) + "\n")


def run_parity(onnx_path, pdir, tol=1e-4):
    r = subprocess.run(["node", str(HERE / "parity.mjs"), str(onnx_path), str(pdir), str(tol)],
                       cwd=ROOT, capture_output=True, text=True)
    log(r.stdout.strip())
    if r.returncode != 0:
        log(r.stderr)
        raise SystemExit(f"ONNX parity failed (rc {r.returncode})")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ============================================================================ references
def choose_reference_cases(index, dcm_meta):
    wants = [lambda m, y: y and m["PhotometricInterpretation"] == "MONOCHROME1" and not m["window"],
             lambda m, y: y and m["PixelRepresentation"] == 1 and m["rescale"],
             lambda m, y: m["window"] and m["BitsStored"] == 12,
             lambda m, y: m["BitsStored"] == 8 and not m["window"]]
    chosen = []
    for w in wants:
        for i, c in enumerate(index["cases"]):
            if i not in chosen and w(dcm_meta[i], any(c["labels"].values())):
                chosen.append(i)
                break
    for i in range(len(index["cases"])):
        if len(chosen) >= 4:
            break
        if i not in chosen:
            chosen.append(i)
    return chosen


def write_references(model, arch, X, ids, index, tdir, rdir):
    import pydicom
    meta = []
    for c in index["cases"]:
        ds = pydicom.dcmread(tdir / c["dicom"], stop_before_pixels=True)
        meta.append({"PhotometricInterpretation": str(ds.PhotometricInterpretation),
                     "PixelRepresentation": int(ds.PixelRepresentation), "BitsStored": int(ds.BitsStored),
                     "window": "WindowCenter" in ds, "rescale": "RescaleSlope" in ds})
    chosen = choose_reference_cases(index, meta)
    if rdir.exists():
        shutil.rmtree(rdir)
    rdir.mkdir(parents=True)
    refs = []
    for i in chosen:
        c = index["cases"][i]
        px = to_pixel_values(X[i:i + 1])
        px[0].astype("<f4").tofile(rdir / f"{c['id']}.pixel_values.f32")
        r = {"id": c["id"], "dicom": c["dicom"], "fhir": c["fhir"], "acquisition": meta[i],
             "pixelValues": f"{c['id']}.pixel_values.f32"}
        if arch == "resnet-bert":
            r.update({"text": c["text"], "inputIds": [int(t) for t in ids[i]], "attentionMask": [1] * len(ids[i]),
                      "tokenTypeIds": [0] * len(ids[i])})
        lg = {m: predict_logits(model, arch, X[i:i + 1], [ids[i]], m)[0]
              for m in (MODES if arch == "resnet-bert" else ("fused", "imageBlanked"))}
        r["logits"] = [float(v) for v in lg["fused"]]
        r["probabilities"] = [float(v) for v in sigmoid(lg["fused"].astype(np.float64))]
        if arch == "resnet-bert":
            r["logitsTextMasked"] = [float(v) for v in lg["textMasked"]]
        r["logitsImageBlanked"] = [float(v) for v in lg["imageBlanked"]]
        refs.append(r)
    doc = {"testset": "models/testset", "pixelValuesShape": [3, SIZE, SIZE], "dtype": "float32-le",
           "tolerance": 1e-4, "findings": G.FINDINGS,
           "note": ("pixel_values: the DICOM file preprocessed by models/training/preprocess.py (modality LUT, "
                    "dataset-then-percentile window, MONOCHROME1 inverted, bilinear half-pixel stretch to "
                    f"{SIZE}x{SIZE}, [0,1]), grey replicated to 3 channels, (y - mean) / std with ImageNet mean/std; "
                    "logits from PyTorch, probabilities = sigmoid(logits)"
                    + ("; logitsTextMasked / logitsImageBlanked: the manifest's ablations" if arch == "resnet-bert"
                       else "; logitsImageBlanked: pixel_values all zeros")),
           "ablations": ({"textMasked": {"inputIds": [CLS, SEP], "attentionMask": [1, 1], "tokenTypeIds": [0, 0]},
                          "imageBlanked": "pixel_values all zeros, text as in the case"} if arch == "resnet-bert"
                         else {"imageBlanked": "pixel_values all zeros"}),
           "cases": refs}
    (rdir / "reference.json").write_text(json.dumps(doc, indent=1) + "\n")
    return [index["cases"][i]["id"] for i in chosen]


# ============================================================================ manifest / card
def manifest(arch, sha, thresholds, version):
    ref = json.loads(REF_MANIFEST.read_text())
    img = {
        "input": {"name": "pixel_values", "dtype": "float32", "layout": "NCHW", "channels": 3,
                  "color": "replicate-grey"},
        "size": {"width": SIZE, "height": SIZE},
        "modalityLut": True,
        "window": {"source": "dataset-then-percentile", "percentiles": [0.5, 99.5]},
        "photometric": {"MONOCHROME1": "invert", "MONOCHROME2": "keep"},
        "resize": {"mode": "stretch", "interpolation": "bilinear"},
        "range": [0, 1],
        "normalize": {"mean": [float(v) for v in IMAGENET_MEAN], "std": [float(v) for v in IMAGENET_STD]},
    }
    m = {"schemaVersion": 2}
    if arch == "resnet-bert":
        m.update({
            "id": "pacs-triage-cxr-resnet-bert", "version": version,
            "deviceUid": "2.25." + str(uuid.uuid4().int),
            "name": "pacs-triage CXR triage model, ResNet + BERT with cross-attention fusion",
            "manufacturer": "pacs-triage project",
            "intendedUse": ("Research model for exercising the pacs-triage pipeline: ranks chest radiograph studies "
                            "for pneumothorax, pleural effusion, consolidation and lung nodule from the image and "
                            "the FHIR clinical context. Trained and evaluated on synthetic data only."),
        })
    else:
        m.update({
            "id": "pacs-triage-cxr-image-only", "version": version,
            "deviceUid": "2.25." + str(uuid.uuid4().int),
            "name": "pacs-triage CXR triage model, image only (ResNet)",
            "manufacturer": "pacs-triage project",
            "intendedUse": ("Research model for exercising the pacs-triage pipeline: ranks chest radiograph studies "
                            "for pneumothorax, pleural effusion, consolidation and lung nodule from the image "
                            "alone (no clinical text). Trained and evaluated on synthetic data only."),
        })
    m["notForClinicalUse"] = "Research model trained on synthetic data. Not for clinical use."
    m["onnx"] = {"file": "model.onnx", "sha256": sha, "opset": 17}
    m["image"] = img
    if arch == "resnet-bert":
        t = ref["text"]
        m["text"] = {"inputs": {"inputIds": "input_ids", "attentionMask": "attention_mask",
                                "tokenTypeIds": "token_type_ids"},
                     "tokenizer": "tokenizer.json", "maxLength": 128, "truncation": "right",
                     "joiner": t["joiner"], "empty": t["empty"], "sections": t["sections"]}
    m["outputs"] = {"scores": {"name": "logits", "kind": "logits", "activation": "sigmoid"}}
    if arch == "resnet-bert":
        m["ablations"] = dict(ABLATIONS)
    else:
        m["ablations"] = {"textMasked": "not applicable: the model has no text input",
                          "imageBlanked": ABLATIONS["imageBlanked"]}
    m["findings"] = [{"code": c, "display": G.DISPLAY[c], "threshold": thresholds[c]} for c in G.FINDINGS]
    return m


def table(metrics, arch):
    rows = [("fused (image + text)" if arch == "resnet-bert" else "fused (= image only, the model's only variant)",
             "fused")]
    if arch == "resnet-bert":
        rows += [("image only (text masked)", "textMasked"), ("text only (image blanked)", "imageBlanked")]
    else:
        rows += [("image blanked (constant output)", "imageBlanked")]
    s = "| AUROC | " + " | ".join(G.FINDINGS) + " | macro |\n|---|" + "---|" * (len(G.FINDINGS) + 1) + "\n"
    for label, m in rows:
        t = metrics[m]
        s += f"| {label} | " + " | ".join(f"{t[c]:.3f}" for c in G.FINDINGS) + f" | **{t['macro']:.3f}** |\n"
    return s


def margin(metrics):
    abl = [metrics[m]["macro"] for m in ("textMasked", "imageBlanked") if m in metrics]
    return metrics["fused"]["macro"] - max(abl)


# ============================================================================ main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", choices=["resnet-bert", "image-only"])
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--test-seed2", type=int, default=2025)
    ap.add_argument("--out")
    ap.add_argument("--n-train", type=int, default=4500)
    ap.add_argument("--n-val", type=int, default=700)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--reuse", action="store_true", help="reuse the cached generated data in models/training/.data")
    ap.add_argument("--reuse-model", action="store_true", help="also reuse the trained weights (redo the rest)")
    ap.add_argument("--only-testset", action="store_true", help="only write the --test-seed2 test set and exit")
    a = ap.parse_args()
    torch.set_num_threads(2)
    DATA.mkdir(parents=True, exist_ok=True)
    tok = WordPieceTokenizer(REF_TOKENIZER)
    t2dir = DATA / f"testset-{a.test_seed2}"
    t2cmd = f"/usr/bin/python3 models/training/build_seed_arch.py --only-testset --test-seed2 {a.test_seed2}"
    if a.only_testset or not (t2dir / "index.json").exists():
        make_testset(a.test_seed2, t2dir, tok, t2cmd)
        if a.only_testset:
            return
    if not a.arch:
        ap.error("--arch is required")
    arch = a.arch
    out = Path(a.out) if a.out else ROOT / "models" / f"cxr-{arch}"
    out = out if out.is_absolute() else ROOT / out
    out.mkdir(parents=True, exist_ok=True)
    command = f"/usr/bin/python3 models/training/build_seed_arch.py --arch {arch}" + \
        (f" --seed {a.seed}" if a.seed != 2024 else "")
    T0 = time.time()

    # ------------------------------------------------------------ data
    cache = DATA / f"seedarch_cache_{a.seed}_{a.n_train}_{a.n_val}_{SIZE}_g{GRID}.npz"
    if (a.reuse or a.reuse_model) and cache.exists():
        z = np.load(cache, allow_pickle=False)
        tr_x, tr_y, va_x, va_y, tr_r = z["tr_x"], z["tr_y"], z["va_x"], z["va_y"], z["tr_r"]
        tr_t, va_t = json.loads(str(z["tr_t"])), json.loads(str(z["va_t"]))
        log(f"reused {cache.name}")
    else:
        with Pool(2) as pool:
            tr_x, tr_t, tr_y, tr_r = generate(a.seed, "train", a.n_train, "tr", (128, 256), pool)
            va_x, va_t, va_y, _ = generate(a.seed, "val", a.n_val, "va", (128, 256), pool)
        np.savez(cache, tr_x=tr_x, tr_y=tr_y, va_x=va_x, va_y=va_y, tr_r=tr_r,
                 tr_t=json.dumps(tr_t), va_t=json.dumps(va_t))
        log(f"data generated in {time.time() - T0:.0f}s")
    log(f"train {len(tr_x)} val {len(va_x)}; prevalence train {tr_y.mean(0).round(3)}")
    tr_ids = [tok.encode(t, 128) for t in tr_t]
    va_ids = [tok.encode(t, 128) for t in va_t]
    lens = np.array([len(x) for x in tr_ids])
    log(f"tokens: vocab {tok.vocab_size()}, train length mean {lens.mean():.1f} max {lens.max()}, "
        f"[UNK] {sum(x.count(tok.unk_id) for x in tr_ids)}")

    # ------------------------------------------------------------ test sets (read back from files)
    te1 = load_testset(ROOT / "models" / "testset", tok)
    te2 = load_testset(t2dir, tok)
    log(f"test sets read back: models/testset {len(te1[0])} cases, {t2dir.relative_to(ROOT)} {len(te2[0])} cases; "
        "texts from the FHIR bundles equal index.json text, Python ids equal index.json inputIds")
    n_tok = node_token_check(REF_TOKENIZER, te1[3] + te2[3] + va_t[:500],
                             te1[1] + te2[1] + va_ids[:500], "testsets+val")

    # ------------------------------------------------------------ train
    wpath = DATA / f"seedarch_{arch}_{a.seed}.pt"
    vocab = tok.vocab_size()
    use_ids = arch == "resnet-bert"
    if a.reuse_model and wpath.exists():
        model = ResNetBert(vocab) if arch == "resnet-bert" else ImageOnly()
        model.load_state_dict(torch.load(wpath))
        model.eval()
        prev = DATA / f"seedarch_{arch}_{a.seed}.train.json"
        prev = json.loads(prev.read_text()) if prev.exists() else {}
        train_s, train_cpu = prev.get("trainSeconds", float("nan")), prev.get("trainCpuSeconds", float("nan"))
        log(f"reused weights {wpath.name}")
    else:
        prev = None
        model, train_s, train_cpu = train(arch, tr_x, tr_ids if use_ids else None, tr_y, tr_r, vocab, a.epochs,
                                          a.seed, (va_x, va_ids if use_ids else None, va_y))
        torch.save(model.state_dict(), wpath)
        (DATA / f"seedarch_{arch}_{a.seed}.train.json").write_text(json.dumps({"trainSeconds": train_s,
                                                                              "trainCpuSeconds": train_cpu}))
    log(f"training took {train_s:.0f}s")

    va_p = sigmoid(predict_logits(model, arch, va_x, va_ids if use_ids else None).astype(np.float64))
    thresholds = {c: round(best_f1_threshold(va_y[:, k], va_p[:, k])[1], 4) for k, c in enumerate(G.FINDINGS)}
    log("validation F1-optimal thresholds", thresholds)

    # ------------------------------------------------------------ evaluation
    metrics = {"arch": arch, "seed": a.seed, "trainSeconds": round(train_s),
               "trainCpuSeconds": None if train_cpu != train_cpu else round(train_cpu), "epochs": a.epochs,
               "nTrain": len(tr_x), "nVal": len(va_x), "valThresholds": thresholds,
               "validation": evaluate_all(model, arch, va_x, va_ids if use_ids else None, va_y)}
    for key, te, name in (("testset", te1, "models/testset"),
                          (f"testset{a.test_seed2}", te2, str(t2dir.relative_to(ROOT)))):
        X, ids, Y = te[0], te[1], te[2]
        mt = evaluate_all(model, arch, X, ids if use_ids else None, Y)
        mt["marginFusedMinusBestAblation"] = margin(mt)
        mt["path"] = name
        mt["seed"] = te[5]["generator"]["seed"]
        metrics[key] = mt
        log(f"{name}: " + " ".join(f"{m}={mt[m]['macro']:.3f}" for m in MODES if m in mt)
            + f" margin {mt['marginFusedMinusBestAblation']:.3f}")

    # ------------------------------------------------------------ export + parity (onnxruntime-node)
    onnx_path = out / "model.onnx"
    export_onnx(model, arch, onnx_path)
    pdir = DATA / "parity" / arch
    write_parity(model, arch, te1[0], te1[1], pdir)
    par = run_parity(onnx_path, pdir)
    metrics["onnxParityMaxAbsDiff"] = par["maxAbsDiff"]
    metrics["onnxBytes"] = onnx_path.stat().st_size
    metrics["parameters"] = int(sum(p.numel() for n, p in model.named_parameters() if not n.startswith("aux")))
    metrics["tokenCheckTexts"] = n_tok
    sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()

    ref_ids = write_references(model, arch, te1[0], te1[1], te1[5], ROOT / "models" / "testset", out / "reference")
    if arch == "resnet-bert":
        shutil.copyfile(REF_TOKENIZER, out / "tokenizer.json")
    elif (out / "tokenizer.json").exists():
        (out / "tokenizer.json").unlink()
    (out / "manifest.json").write_text(json.dumps(manifest(arch, sha, thresholds, a.version), indent=2,
                                                  ensure_ascii=False) + "\n")
    metrics["referenceCases"] = ref_ids
    metrics["referenceParityMaxAbsDiff"] = run_parity(onnx_path, out / "reference")["maxAbsDiff"]
    # the reference tensors once more through the manifest's explicit resize formula (not torch)
    import pydicom
    worst = 0.0
    for cid in ref_ids:
        ds = pydicom.dcmread(ROOT / "models" / "testset" / "dicom" / f"{cid}.dcm")
        y = PP.resize_reference(PP.voi_unit(PP.pixels_from_dataset(ds), PP.meta_from_dataset(ds), CFG01)
                                .astype(np.float32), SIZE)
        ref = np.fromfile(out / "reference" / f"{cid}.pixel_values.f32", "<f4").reshape(3, SIZE, SIZE)
        worst = max(worst, float(np.abs(to_pixel_values(y[None])[0] - ref).max()))
    log(f"reference pixel_values vs the explicit resize formula: max|diff| {worst:.2e}")
    metrics["referencePreprocessFormulaMaxAbsDiff"] = worst
    if prev is None:        # trained in this run: the whole build's time goes with the weights
        metrics["buildSeconds"] = round(time.time() - T0)
        tj = DATA / f"seedarch_{arch}_{a.seed}.train.json"
        tj.write_text(json.dumps({**json.loads(tj.read_text()), "buildSeconds": time.time() - T0}))
    else:
        metrics["buildSeconds"] = round(prev["buildSeconds"]) if "buildSeconds" in prev else None
        metrics["regeneratedWithReuseModelSeconds"] = round(time.time() - T0)
    (HERE / f"metrics-{arch}.json").write_text(json.dumps(metrics, indent=1) + "\n")
    write_card(arch, out, metrics, command, a, thresholds)
    log(json.dumps({k: metrics[k] for k in ("testset", f"testset{a.test_seed2}")}, indent=1))
    log(f"build done in {time.time() - T0:.0f}s")


def write_card(arch, out, M, command, a, thresholds):
    s2 = f"testset{a.test_seed2}"
    mb = M["onnxBytes"] / 1e6
    if arch == "resnet-bert":
        head = "pacs-triage CXR model: ResNet + BERT, cross-attention fusion (model card)"
        arch_md = f"""* **Image encoder** — small ResNet (ResNet-10 layout): 7×7 stride-4 stem conv (3 → 32,
  BatchNorm, ReLU; replaces torchvision's 7×7/2 conv + 3×3/2 max-pool, whose 112×112 stage
  alone cost more than the rest of the network on the 2-core training CPU), then one
  BasicBlock per stage, widths 32 / 48 / 96 / 128, strides 1 / 2 / 2 / 1 with the last
  stage's second conv dilated (2) instead of strided (output stride 16, as torchvision's
  `replace_stride_with_dilation`): {SIZE} → 56 → 28 → 14 → 14. The 14×14×128 feature map →
  1×1 conv to d = 96 → 196 image tokens + learned 2-D positions.
* **Text encoder** — small BERT: WordPiece embeddings (the reference model's 867-token
  vocabulary, `tokenizer.json`), learned positions (max length 128), token-type embeddings
  (`token_type_ids`, all 0 for the one segment), LayerNorm; 2 post-LN BERT layers,
  d = 96, 4 heads, FFN 384, GELU; key mask `(1 − attention_mask)·(−10000)` as in BERT
  (finite, so the text-masked ablation never gives NaN).
* **Fusion** — K = 4 learned per-finding queries; 2 pre-LN fusion layers, each: query
  self-attention → cross-attention (4 heads) over the 196 image tokens → cross-attention
  (4 heads) over the S text tokens (key mask from `attention_mask`) → FFN (192). Image and
  text have separate softmaxes, so neither modality can crowd the other out of a query's
  attention. (A first version that attended over the concatenation [image ; text] in one
  softmax, without attention guidance, reached only 0.88–0.89 fused macro AUROC.)
* **Head** — LayerNorm, a per-finding linear map of its query → `logits` [N, 4] (no
  sigmoid inside the model; `manifest.outputs.scores.activation` = sigmoid). No saliency.
* **Training** (`build_seed_arch.py`, `torch.set_num_threads(2)`, `nice -n 19`): {M['nTrain']}
  training / {M['nVal']} validation cases of seed {M['seed']} (the reference model's splits), {M['epochs']}
  epochs, batch 64, AdamW (lr 2e-3, one-cycle, weight decay 0.01), BCE on the logits,
  **modality dropout with exactly the manifest's ablations** (15 % of samples text masked:
  `[CLS] [SEP]` then `[PAD]`, mask 1 for CLS/SEP; 20 % image blanked: `pixel_values` all
  zeros). Training-only auxiliary losses (their heads are not in the ONNX graph): a 1×1 conv
  sign detector on the 14×14 map supervised with the generator's finding / mimic regions, a
  pooled-image head (average + max pooling) and a text `[CLS]` head (0.5 each, so each
  encoder learns its own modality), and attention guidance (0.2): −log of the first fusion
  layer's head-averaged image attention mass inside the finding's (or mimic's) region, as the
  reference model does for its image attention.
* {M['parameters']:,} parameters (exported graph), ONNX {mb:.2f} MB (float32)."""
        io_md = """| input | dtype | shape |
|---|---|---|
| `pixel_values` | float32 | [N, 3, 224, 224] (NCHW) |
| `input_ids` | int64 | [N, S] |
| `attention_mask` | int64 | [N, S] |
| `token_type_ids` | int64 | [N, S] (all 0) |
| **output** `logits` | float32 | [N, 4] — sigmoid gives the probabilities the thresholds apply to |

`N` and `S` are dynamic (S ≤ 128)."""
    else:
        head = "pacs-triage CXR model: image only (ResNet) (model card)"
        arch_md = f"""* **Image encoder** — the ResNet of `cxr-resnet-bert` (ResNet-10 layout, 7×7 stride-4
  stem conv 3 → 32, one BasicBlock per stage, widths 32 / 48 / 96 / 128, dilated last stage,
  {SIZE} → 14×14 → 1×1 conv to d = 96 → 196 tokens + learned 2-D positions), trained on its own.
* **Head** — the per-finding query head of `cxr-resnet-bert` without its text branch: K = 4
  learned queries, 2 pre-LN layers (query self-attention → cross-attention over the 196 image
  tokens, 4 heads → FFN 192), LayerNorm, per-finding linear map → `logits` [N, 4] (no sigmoid
  inside the model). No text input at all; no saliency.
* **Training** (`build_seed_arch.py`, `torch.set_num_threads(2)`, `nice -n 19`): the same
  {M['nTrain']} / {M['nVal']} cases of seed {M['seed']}, {M['epochs']} epochs, batch 64, AdamW (lr 2e-3, one-cycle,
  weight decay 0.01), BCE, plus the same training-only losses as the image side of
  `cxr-resnet-bert`: the 14×14 region-supervised sign detector and the pooled-image head
  (0.5 each) and the attention guidance of the first layer's image attention (0.2). No
  modality dropout (there is only one modality). A first version with a global-average-pool
  head and no attention guidance reached only 0.749 / 0.707 macro AUROC (lung nodule ≈ 0.5).
* {M['parameters']:,} parameters, ONNX {mb:.2f} MB (float32)."""
        io_md = """| input | dtype | shape |
|---|---|---|
| `pixel_values` | float32 | [N, 3, 224, 224] (NCHW) |
| **output** `logits` | float32 | [N, 4] — sigmoid gives the probabilities the thresholds apply to |

`N` is dynamic."""
    t1, t2 = M["testset"], M[s2]
    cpu = (f", {M['trainCpuSeconds']} s of process CPU time" if M.get("trainCpuSeconds") else "")
    regen = ("" if not M.get("regeneratedWithReuseModelSeconds") else
             f" The artefacts were last regenerated from the stored weights with `--reuse-model` (everything\n"
             f"but training) in {M['regeneratedWithReuseModelSeconds']} s.")
    parity_desc = ("batches N = 1, 1, 2, 5, 8, 3 with S = 2, 128, 37, 64, 11, 100 (random inputs, ragged\n"
                   "  padding, both ablations inside the N = 5 batch) and 24 real test-set cases (ragged, text\n"
                   "  masked at S = 2 and S = 40, image blanked)") if arch == "resnet-bert" else (
                   "batches N = 1, 1, 2, 5, 8, 3 (random inputs, one blanked image inside the N = 5 batch)\n"
                   "  and a batch of 24 real test-set cases (as is and blanked)")
    if arch == "resnet-bert":
        bar = (f"Fused minus the better ablation (macro AUROC): **{t1['marginFusedMinusBestAblation']:.3f}** on "
               f"`models/testset`, **{t2['marginFusedMinusBestAblation']:.3f}** on the seed-{a.test_seed2} test set "
               "(required: fused ≥ 0.90 and ≥ 0.03 above both ablations on both sets).")
    else:
        bar = ("The model has no text input, so the text-masked ablation does not apply and its fused figures "
               "*are* its image-only figures; the image-blanked row (all-zero `pixel_values`) gives the same "
               "output for every case (AUROC 0.5 by construction) and is shown for completeness.")
    files = "| `model.onnx` | the model (TorchScript exporter, opset 17) |\n| `manifest.json` | the contract (schema 2): preprocessing, " \
            + ("text rendering, " if arch == "resnet-bert" else "") + "outputs, ablations, validation-chosen thresholds, sha256 |\n"
    if arch == "resnet-bert":
        files += "| `tokenizer.json` | WordPiece tokenizer — a copy of `models/cxr-triage/tokenizer.json` (BERT normaliser, `[CLS] $A [SEP]`, no truncation/padding configured; the runtime truncates to 128 keeping `[SEP]`) |\n"
    files += ("| `reference/` | parity references from 4 `models/testset` cases covering the acquisition variants: "
              "`<id>.pixel_values.f32` (the Python-preprocessed [3, 224, 224] tensor, float32 LE) and "
              "`reference.json` (" + ("token ids, masks, token types, " if arch == "resnet-bert" else "")
              + "PyTorch logits" + (", logits of both ablations" if arch == "resnet-bert" else ", image-blanked logits")
              + ", sigmoid probabilities; tolerance 1e-4) |\n")
    card = f"""# {head}

> **Synthetic data only. NOT for clinical use.** Trained and tested on the pacs-triage
> synthetic generator (`models/training/generator.py`, the same generator and the same seed-{M['seed']}
> splits as the reference model `models/cxr-triage`, whose card `models/README.md` describes the
> data); its numbers say nothing about real radiographs.

## Files

| path | what |
|---|---|
{files}
## Inputs and outputs

{io_md}

Image preprocessing (manifest `image`): modality LUT (rescale slope/intercept), VOI window
from the dataset's first WindowCenter/WindowWidth else the 0.5 / 99.5 percentiles, MONOCHROME1
inverted, bilinear half-pixel resize *stretched* to {SIZE}×{SIZE} (= `torch.nn.functional.interpolate(
mode="bilinear", align_corners=False)`), range [0, 1] — exactly `models/training/preprocess.py` as
for the reference model, only without its mean 0.5 / std 0.25 — then the grey image replicated
to 3 channels and normalised per channel with ImageNet mean [0.485, 0.456, 0.406] / std
[0.229, 0.224, 0.225].{'''
Text (manifest `text`): the reference model's FHIR template (order reason, 2 newest prior
report conclusions, latest observation per LOINC code, joined with " | "), tokenised with
`tokenizer.json`, `[CLS] … [SEP]`, truncated on the right to 128 keeping `[SEP]`, padded
with `[PAD]` (0); `token_type_ids` all 0.''' if arch == "resnet-bert" else ''}

## Architecture

{arch_md}

## Build (one command)

    nice -n 19 /usr/bin/python3 models/training/build_seed_arch.py --arch {arch} [--seed N] [--reuse]

(Debian `python3-torch` 1.13, `python3-onnx`, `python3-numpy`, `python3-scipy`,
`python3-pydicom` 2.3; Node 20 with the project's `onnxruntime-node` and
`@huggingface/tokenizers` for the checks.) It regenerates the training / validation data of
`--seed` (default {M['seed']}; cached in the git-ignored `models/training/.data/`, `--reuse` reuses the
cache, `--reuse-model` also the trained weights), tokenises with a pure-Python BERT WordPiece
(`models/training/wordpiece.py`), trains, picks F1-optimal thresholds on the validation split,
evaluates on both test sets read back from their DICOM files and FHIR bundles (texts are
re-rendered from the bundles and must equal `index.json`; ids must equal `index.json`
`inputIds`), exports ONNX (`torch.onnx.export`, TorchScript, opset 17, dynamic axes), checks
PyTorch against onnxruntime-node (`node models/training/parity.mjs`), writes
`model.onnx`, `manifest.json` (sha256, fresh `deviceUid`), `reference/`, this card and
`models/training/metrics-{arch}.json`.

The second test set (seed {a.test_seed2}, its test split: 300 cases, matrix 128–160, written as DICOM +
FHIR bundles + `index.json` under the git-ignored `models/training/.data/testset-{a.test_seed2}/`, not
committed) is made by the build when missing, or on its own by

    /usr/bin/python3 models/training/build_seed_arch.py --only-testset --test-seed2 {a.test_seed2}

Training time: **{M['trainSeconds']} s** wall clock ({M['epochs']} epochs, `torch.set_num_threads(2)`, `nice -n 19`, on a
2-core machine shared with other jobs — the load average was 4–8 during the run, so read it as an
upper bound){cpu}; whole build (data, training, evaluation, export, checks) {M['buildSeconds']} s.{regen}

## Evaluation (PyTorch, test sets read back from their files)

AUROC per finding; labels include the generator's 2 % label noise. Ablations as in the
manifest: *text masked* = `[CLS] [SEP]` + `[PAD]`…, mask 1 for CLS/SEP only; *image blanked*
= `pixel_values` all zeros (after normalisation).

### `models/testset` (seed {t1['seed']}, 300 cases, shipped)

{table(t1, arch)}
### second test set, seed {t2['seed']} (300 cases, `{t2['path']}`)

{table(t2, arch)}
{bar}

Validation split (seed {M['seed']}, {M['nVal']} cases): macro AUROC """ + ", ".join(
        f"{m} {M['validation'][m]['macro']:.3f}" for m in M["validation"]) + f""".
Validation-chosen (F1-optimal, on the sigmoid probability) thresholds: """ + ", ".join(
        f"{c} {thresholds[c]}" for c in G.FINDINGS) + f""".

## Checks

* ONNX vs PyTorch (onnxruntime-node 1.30, CPU): max |logit diff| **{M['onnxParityMaxAbsDiff']:.2e}** over
  {parity_desc}; tolerance 1e-4. The shipped `reference/` cases
  ({'fused and both ablations' if arch == 'resnet-bert' else 'as is and image blanked'}): max |diff| {M['referenceParityMaxAbsDiff']:.2e}
  (`node models/training/parity.mjs models/cxr-{arch}/model.onnx models/cxr-{arch}/reference`).
* Reference `pixel_values` recomputed with the manifest's explicit bilinear half-pixel formula
  (`preprocess.resize_reference`, not `torch.nn.functional.interpolate`): max |diff|
  {M['referencePreprocessFormulaMaxAbsDiff']:.1e}.""" + ("" if arch != "resnet-bert" else f"""
* Tokenisation: Python WordPiece ids equal `index.json` `inputIds` for all 300 cases of both
  test sets, and equal Node `@huggingface/tokenizers` (`models/training/tokens.mjs`, the
  service's truncation) on {M['tokenCheckTexts']} texts (both test sets + 500 validation texts).""") + f"""

## Intended use and limits

A research artefact for developing and testing pacs-triage with a second model layout
({'3-channel ImageNet-normalised image, BERT-style text inputs with `token_type_ids`, logits out' if arch == 'resnet-bert' else 'image-only, 3-channel ImageNet-normalised input, logits out'}).
Trained and tested only on simple synthetic images{' and templated text' if arch == 'resnet-bert' else ''} from one
generator; it will not transfer to real radiographs{' or real clinical notes' if arch == 'resnet-bert' else ''}; thresholds are
F1-optimal on the synthetic validation split. **Not for clinical use.**
"""
    (out / "README.md").write_text(card)


if __name__ == "__main__":
    main()
