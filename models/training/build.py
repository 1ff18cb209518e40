"""One entry point: regenerate data, train tokenizer + model, export, verify, write
manifest, held-out test set, parity references and demo fixtures.

    python3 models/training/build.py [--seed N] [--out models/cxr-triage]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
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

import generator as G  # noqa: E402
import preprocess as PP  # noqa: E402
from evaluate import auroc_table, best_f1_threshold  # noqa: E402

SPLITS = {"train": 0, "val": 1, "test": 2, "demo": 3}


def log(*a):
    print(*a, flush=True)


def _gen(job):
    seed, split, i, cid, size_range, force, keep = job
    c = G.make_case(seed, split, i, cid, size_range, force)
    img = PP.preprocess_array(c.pixels, c.meta)
    text = PP.render_text(c.resources)
    y = np.array([c.labels[k] for k in G.FINDINGS], np.float32)
    return img, text, y, (c if keep else None), region_grid(c)


def region_grid(c, g=14):
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


def generate(seed, split, n, prefix, size_range, keep=False, forces=None, pool=None):
    jobs = [(seed, SPLITS[split], i, f"{prefix}{i + 1:04d}" if not forces else f"{prefix}{i + 1:02d}",
             size_range, forces[i] if forces else None, keep) for i in range(n)]
    res = pool.map(_gen, jobs, chunksize=32) if pool else list(map(_gen, jobs))
    imgs = np.stack([r[0] for r in res]).astype(np.float32)
    regs = np.stack([r[4] for r in res])
    return imgs, [r[1] for r in res], np.stack([r[2] for r in res]), [r[3] for r in res], regs


def train_tokenizer(texts, path, vocab_size=2000):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=True, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=1,
                                        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.decoder = decoders.WordPiece()
    tok.no_padding()
    tok.no_truncation()
    assert [tok.token_to_id(t) for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]] == [0, 1, 2, 3, 4]
    tok.save(str(path))
    return tok


def fullurl(*parts):
    return "urn:uuid:" + str(uuid.UUID(bytes=hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:16]))


def write_testset(cases, texts, id_lists, seed, out, command):
    (out / "dicom").mkdir(parents=True, exist_ok=True)
    (out / "fhir").mkdir(parents=True, exist_ok=True)
    for f in list((out / "dicom").glob("*.dcm")) + list((out / "fhir").glob("*.json")):
        f.unlink()
    index = {"format": "pacs-triage-evalset/1",
             "generator": {"seed": seed, "command": command},
             "findings": G.FINDINGS, "cases": []}
    for c, text, ids in zip(cases, texts, id_lists):
        G.write_dicom(c, out / "dicom" / f"{c.id}.dcm")
        bundle = {"resourceType": "Bundle", "id": f"bundle-{c.id}", "type": "collection",
                  "entry": [{"fullUrl": fullurl(seed, c.id, r["resourceType"], r["id"]), "resource": r}
                            for r in c.resources]}
        (out / "fhir" / f"{c.id}.json").write_text(json.dumps(bundle, indent=1) + "\n")
        index["cases"].append({"id": c.id, "dicom": f"dicom/{c.id}.dcm", "fhir": f"fhir/{c.id}.json",
                               "labels": {k: int(c.labels[k]) for k in G.FINDINGS},
                               "text": text, "inputIds": [int(i) for i in ids]})
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")


def write_demo(cases, seed, out, command):
    (out / "dicom").mkdir(parents=True, exist_ok=True)
    for f in (out / "dicom").glob("*.dcm"):
        f.unlink()
    entries = []
    for c in cases:
        G.write_dicom(c, out / "dicom" / f"{c.id}.dcm")
        for r in c.resources:
            entries.append({"fullUrl": fullurl("demo", seed, r["resourceType"], r["id"]), "resource": r,
                            "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}})
    bundle = {"resourceType": "Bundle", "id": "pacs-triage-demo", "type": "transaction", "entry": entries}
    (out / "fhir-bundle.json").write_text(json.dumps(bundle, indent=1) + "\n")
    rows = "\n".join(f"| `dicom/{c.id}.dcm` | {c.meta['PatientID']} | {c.meta['AccessionNumber']} | "
                     + ", ".join(k for k in G.FINDINGS if c.labels[k]) + (" (normal)" if not any(c.labels.values()) else "")
                     + " |" for c in cases)
    (out / "README.md").write_text(f"""# Demo studies (synthetic)

Six **synthetic** chest radiograph studies and their clinical context, made by the
pacs-triage synthetic generator (`models/training/generator.py`); no real patient
data, all names are `SYNTH^...`. Regenerated (together with the model) by

    {command}

* `dicom/*.dcm`: one DICOM Part 10 file per study (Explicit VR Little Endian).
* `fhir-bundle.json`: one FHIR R4 transaction Bundle (PUT) with every Patient,
  ServiceRequest (AccessionNumber as `ACSN` identifier), DiagnosticReport and Observation.

| file | PatientID | AccessionNumber | generator ground truth |
|---|---|---|---|
{rows}

Not for clinical use.
""")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--out", default="models/cxr-triage")
    ap.add_argument("--testset", default="models/testset")
    ap.add_argument("--demo", default="test/fixtures/demo")
    ap.add_argument("--n-train", type=int, default=4500)
    ap.add_argument("--n-val", type=int, default=700)
    ap.add_argument("--n-test", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse the cached generated data in models/training/.data")
    ap.add_argument("--reuse-model", action="store_true",
                    help="also reuse the trained weights in models/training/.data (redo export steps only)")
    a = ap.parse_args()
    torch.set_num_threads(2)
    seed = a.seed
    out = (ROOT / a.out) if not os.path.isabs(a.out) else Path(a.out)
    tdir = (ROOT / a.testset) if not os.path.isabs(a.testset) else Path(a.testset)
    ddir = (ROOT / a.demo) if not os.path.isabs(a.demo) else Path(a.demo)
    data = HERE / ".data"
    for d in (out, tdir, ddir, data, out / "reference"):
        d.mkdir(parents=True, exist_ok=True)
    command = "python3 models/training/build.py" + (f" --seed {seed}" if seed != 2024 else "")
    T0 = time.time()

    # ---------------------------------------------------------------- data
    cache = data / f"cache_{seed}_{a.n_train}_{a.n_val}.npz"
    with Pool(2) as pool:
        if a.reuse and cache.exists():
            z = np.load(cache, allow_pickle=False)
            tr_x, tr_y, va_x, va_y, tr_r = z["tr_x"], z["tr_y"], z["va_x"], z["va_y"], z["tr_r"]
            tr_t, va_t = json.loads(str(z["tr_t"])), json.loads(str(z["va_t"]))
        else:
            tr_x, tr_t, tr_y, _, tr_r = generate(seed, "train", a.n_train, "tr", (128, 256), pool=pool)
            va_x, va_t, va_y, _, _ = generate(seed, "val", a.n_val, "va", (128, 256), pool=pool)
            np.savez(cache, tr_r=tr_r, tr_x=tr_x, tr_y=tr_y, va_x=va_x, va_y=va_y,
                     tr_t=json.dumps(tr_t), va_t=json.dumps(va_t))
        te_x, te_t, te_y, te_c, _ = generate(seed, "test", a.n_test, "case", (128, 160), keep=True, pool=pool)
    log(f"data generated in {time.time() - T0:.0f}s; prevalence train {tr_y.mean(0).round(3)} test {te_y.sum(0)}")
    (data / "train_texts.txt").write_text("\n".join(tr_t))

    tok = train_tokenizer(tr_t, out / "tokenizer.json")
    vocab = tok.get_vocab_size()
    enc = lambda ts: [PP.encode_text(tok, t, 128) for t in ts]  # noqa: E731
    tr_ids, va_ids, te_ids = enc(tr_t), enc(va_t), enc(te_t)
    lens = np.array([len(x) for x in tr_ids])
    log(f"tokenizer vocab {vocab}; train token length mean {lens.mean():.1f} max {lens.max()} "
        f"truncated {(lens >= 128).mean():.3f}")

    # ---------------------------------------------------------------- train
    from train import predict, train
    wpath = data / f"model_{seed}.pt"
    if a.reuse_model and wpath.exists():
        from model import TriageModel
        model = TriageModel(vocab)
        model.load_state_dict(torch.load(wpath))
        model.eval()
        train_s = json.loads((HERE / "metrics.json").read_text()).get("trainSeconds", 0)
    else:
        model, train_s = train(tr_x, tr_ids, tr_y, vocab, regions=tr_r, epochs=a.epochs, seed=seed, log=log,
                               val=(va_x, va_ids, va_y))
        torch.save(model.state_dict(), wpath)
    log(f"training took {train_s:.0f}s")

    # thresholds on validation
    va_p = predict(model, va_x, va_ids)
    thresholds = {c: round(best_f1_threshold(va_y[:, k], va_p[:, k])[1], 4) for k, c in enumerate(G.FINDINGS)}
    log("val thresholds", thresholds)

    # ---------------------------------------------------------------- test set + evaluation
    write_testset(te_c, te_t, te_ids, seed, tdir, command)
    te_x_dcm = np.stack([PP.preprocess_dicom(tdir / "dicom" / f"{c.id}.dcm") for c in te_c])
    diff = np.abs(te_x_dcm - te_x).max()
    log(f"DICOM round trip preprocessing max|diff| {diff:.2e}")
    assert diff < 1e-5
    metrics = {}
    for mode in ("fused", "textMasked", "imageBlanked"):
        metrics[mode] = auroc_table(te_y, predict(model, te_x_dcm, te_ids, mode))
    metrics["valThresholds"] = thresholds
    metrics["trainSeconds"] = round(train_s)
    metrics["seed"] = seed
    log(json.dumps(metrics, indent=1))
    (HERE / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")

    # ---------------------------------------------------------------- export + verify
    onnx_path = out / "model.onnx"
    from export import export, verify
    export(model, onnx_path)
    verify(model, onnx_path, log=log)
    sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()

    # ---------------------------------------------------------------- references
    # pick 4 test cases covering the acquisition variants, first two with a positive finding
    def feat(c):
        m = c.meta
        return (m["PhotometricInterpretation"], m["PixelRepresentation"], "WindowCenter" in m,
                "RescaleSlope" in m, m["BitsStored"])
    chosen, seen = [], set()
    wants = [lambda c: any(c.labels.values()) and c.meta["PhotometricInterpretation"] == "MONOCHROME1"
             and "WindowCenter" not in c.meta,
             lambda c: any(c.labels.values()) and c.meta["PixelRepresentation"] == 1 and "RescaleSlope" in c.meta,
             lambda c: "WindowCenter" in c.meta and c.meta["BitsStored"] == 12,
             lambda c: c.meta["BitsStored"] == 8 and "WindowCenter" not in c.meta]
    for w in wants:
        for i, c in enumerate(te_c):
            if i not in seen and w(c):
                chosen.append(i); seen.add(i); break
    for i in range(len(te_c)):
        if len(chosen) >= 4:
            break
        if i not in seen:
            chosen.append(i); seen.add(i)
    rdir = out / "reference"
    for f in rdir.glob("*"):
        f.unlink()
    refs = []
    for j, i in enumerate(chosen):
        c = te_c[i]
        x = te_x_dcm[i:i + 1]
        ids = torch.tensor([te_ids[i]]); mask = torch.ones_like(ids)
        with torch.no_grad():
            p, sal, _ = model(torch.from_numpy(x).unsqueeze(1), ids, mask)
        x[0].astype("<f4").tofile(rdir / f"{c.id}.image.f32")
        r = {"id": c.id, "dicom": f"dicom/{c.id}.dcm", "image": f"{c.id}.image.f32",
             "inputIds": [int(t) for t in te_ids[i]], "attentionMask": [1] * len(te_ids[i]),
             "probabilities": [float(v) for v in p[0].tolist()]}
        if j < 2:
            sal[0].numpy().astype("<f4").tofile(rdir / f"{c.id}.saliency.f32")
            r["saliency"] = f"{c.id}.saliency.f32"
        refs.append(r)
    (rdir / "reference.json").write_text(json.dumps({
        "testset": "models/testset", "imageShape": [224, 224],
        "saliencyShape": [len(G.FINDINGS), 224, 224], "dtype": "float32-le", "tolerance": 1e-4,
        "findings": G.FINDINGS, "cases": refs}, indent=1) + "\n")

    # ---------------------------------------------------------------- manifest
    manifest = {
        "schemaVersion": 1,
        "id": "pacs-triage-cxr-ref",
        "version": a.version,
        "deviceUid": "2.25." + str(uuid.uuid4().int),
        "name": "pacs-triage reference CXR triage model",
        "manufacturer": "pacs-triage project",
        "intendedUse": ("Reference model for exercising the pacs-triage pipeline: ranks chest radiograph "
                        "studies for pneumothorax, pleural effusion, consolidation and lung nodule from the "
                        "image and the FHIR clinical context. Trained and evaluated on synthetic data only."),
        "notForClinicalUse": "Research reference model trained on synthetic data. Not for clinical use.",
        "onnx": {"file": "model.onnx", "sha256": sha, "opset": 18},
        "inputs": {
            "image": {"name": "image", "dtype": "float32", "shape": ["N", 1, 224, 224]},
            "inputIds": {"name": "input_ids", "dtype": "int64", "shape": ["N", "S"]},
            "attentionMask": {"name": "attention_mask", "dtype": "int64", "shape": ["N", "S"]}},
        "outputs": {
            "probabilities": {"name": "probabilities", "shape": ["N", "K"]},
            "saliency": {"name": "saliency", "shape": ["N", "K", 224, 224]}},
        "image": PP.IMAGE_CFG,
        "text": PP.TEXT_CFG,
        "ablations": {
            "textMasked": "input_ids = [CLS] [SEP] then [PAD]…; attention_mask = 1 for CLS and SEP, 0 after",
            "imageBlanked": "image tensor all zeros (= mid grey after normalisation)"},
        "findings": [{"code": c, "display": G.DISPLAY[c], "threshold": thresholds[c]} for c in G.FINDINGS],
        "saliency": {"threshold": 0.5, "space": "model-input", "minProbability": 0.5},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")

    # ---------------------------------------------------------------- demo fixtures
    def force(code=None, extra_clue=None):
        f = {k: "clean" for k in G.FINDINGS}
        f.update({"clue:" + k: "neutral" for k in G.FINDINGS})
        if code:
            f[code] = "clear"
            f["clue:" + code] = "supports"
        if extra_clue:
            f["clue:" + extra_clue[0]] = extra_clue[1]
        return f
    forces = [force("pneumothorax"), force("pleural_effusion"), force("consolidation"),
              force("lung_nodule"), force(), force(extra_clue=("pneumothorax", "explains"))]
    dx, dt, dy, dc, _ = generate(seed, "demo", 6, "demo", (192, 256), keep=True, forces=forces)
    write_demo(dc, seed, ddir, command)
    dp = predict(model, dx, enc(dt))
    for c, p in zip(dc, dp):
        log(f"demo {c.id}: " + " ".join(f"{k}={v:.2f}" for k, v in zip(G.FINDINGS, p)))
    log(f"build done in {time.time() - T0:.0f}s")


if __name__ == "__main__":
    main()
