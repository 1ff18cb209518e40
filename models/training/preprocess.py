"""Image preprocessing and text rendering exactly as specified in models/MANIFEST.md.

Used for training (from the generator's stored pixel arrays + metadata), for the
held-out test set, for the parity references and for evaluation: one code path.
"""
from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F

IMAGE_CFG = {
    "size": 224,
    "modalityLut": True,
    "window": {"source": "dataset-then-percentile", "percentiles": [0.5, 99.5]},
    "photometric": {"MONOCHROME1": "invert", "MONOCHROME2": "keep"},
    "resize": "bilinear-half-pixel",
    "normalize": {"mean": 0.5, "std": 0.25},
}

TEXT_CFG = {
    "tokenizer": "tokenizer.json",
    "maxLength": 128,
    "joiner": " | ",
    "empty": "no clinical information",
    "sections": [
        {"kind": "orderReason", "resourceType": "ServiceRequest",
         "template": "indication: {reason}", "max": 1},
        {"kind": "priorReports", "resourceType": "DiagnosticReport",
         "template": "prior report {date}: {conclusion}", "max": 2, "order": "newest-first"},
        {"kind": "observations", "resourceType": "Observation", "latestPerCode": True,
         "codes": [
             {"system": "http://loinc.org", "code": "59408-5", "label": "spo2"},
             {"system": "http://loinc.org", "code": "8310-5", "label": "temp"},
             {"system": "http://loinc.org", "code": "9279-1", "label": "resp rate"},
             {"system": "http://loinc.org", "code": "8867-4", "label": "heart rate"},
             {"system": "http://loinc.org", "code": "6690-2", "label": "wbc"},
             {"system": "http://loinc.org", "code": "1988-5", "label": "crp"},
         ],
         "template": "{label} {value} {unit}"},
    ],
}


def _first(x):
    if x is None:
        return None
    if isinstance(x, (list, tuple)) or (hasattr(x, "__len__") and not isinstance(x, str) and hasattr(x, "__getitem__")):
        return float(x[0]) if len(x) else None
    return float(x)


def meta_from_dataset(ds) -> dict:
    m = {"PhotometricInterpretation": str(ds.PhotometricInterpretation)}
    if "RescaleSlope" in ds and ds.RescaleSlope not in (None, ""):
        m["RescaleSlope"] = float(ds.RescaleSlope)
    if "RescaleIntercept" in ds and ds.RescaleIntercept not in (None, ""):
        m["RescaleIntercept"] = float(ds.RescaleIntercept)
    if "WindowCenter" in ds and "WindowWidth" in ds and ds.WindowCenter not in (None, "") \
            and ds.WindowWidth not in (None, ""):
        m["WindowCenter"] = _first(ds.WindowCenter)
        m["WindowWidth"] = _first(ds.WindowWidth)
    return m


def pixels_from_dataset(ds) -> np.ndarray:
    arr = ds.pixel_array            # pydicom honours PixelRepresentation / BitsStored
    if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
        arr = arr[0]
    if int(getattr(ds, "SamplesPerPixel", 1)) == 3:
        a = arr.astype(np.float64)
        arr = 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
    return arr


def voi_unit(stored: np.ndarray, meta: dict, cfg=IMAGE_CFG) -> np.ndarray:
    """steps 1-3: modality LUT, VOI window, photometric; float64 in [0,1]."""
    v = stored.astype(np.float64)
    if cfg["modalityLut"]:
        v = v * float(meta.get("RescaleSlope", 1.0)) + float(meta.get("RescaleIntercept", 0.0))
    if meta.get("WindowCenter") is not None and meta.get("WindowWidth") is not None:
        c, w = float(meta["WindowCenter"]), float(meta["WindowWidth"])
    else:
        lo, hi = np.percentile(v, cfg["window"]["percentiles"])
        c, w = (lo + hi) / 2.0, max(hi - lo, 1.0)
    lower = c - 0.5 - (w - 1) / 2
    upper = c - 0.5 + (w - 1) / 2
    y = (v - (c - 0.5)) / max(w - 1, 1.0) + 0.5
    y = np.where(v <= lower, 0.0, np.where(v > upper, 1.0, y))
    if cfg["photometric"].get(meta["PhotometricInterpretation"]) == "invert":
        y = 1.0 - y
    return y


def resize_bilinear_half_pixel(y: np.ndarray, size: int) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))[None, None]
    out = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return out[0, 0].numpy()


def resize_reference(y: np.ndarray, size: int) -> np.ndarray:
    """explicit formula from the manifest (used to verify the torch path)."""
    rows, cols = y.shape
    y = y.astype(np.float32)
    j = np.arange(size, dtype=np.float32)
    xs = np.clip((j + np.float32(0.5)) * np.float32(cols / size) - np.float32(0.5), 0, cols - 1)
    ys = np.clip((j + np.float32(0.5)) * np.float32(rows / size) - np.float32(0.5), 0, rows - 1)
    x0 = np.floor(xs).astype(int); x1 = np.minimum(x0 + 1, cols - 1); fx = (xs - x0).astype(np.float32)
    y0 = np.floor(ys).astype(int); y1 = np.minimum(y0 + 1, rows - 1); fy = (ys - y0).astype(np.float32)
    top = y[y0][:, x0] * (1 - fx) + y[y0][:, x1] * fx
    bot = y[y1][:, x0] * (1 - fx) + y[y1][:, x1] * fx
    return (top * (1 - fy)[:, None] + bot * fy[:, None]).astype(np.float32)


def preprocess_array(stored: np.ndarray, meta: dict, cfg=IMAGE_CFG) -> np.ndarray:
    """stored pixel array + metadata -> float32 [size, size] model input."""
    y = voi_unit(stored, meta, cfg).astype(np.float32)
    y = resize_bilinear_half_pixel(y, cfg["size"])
    mean, std = np.float32(cfg["normalize"]["mean"]), np.float32(cfg["normalize"]["std"])
    return ((y - mean) / std).astype(np.float32)


def preprocess_dicom(path, cfg=IMAGE_CFG) -> np.ndarray:
    import pydicom
    ds = pydicom.dcmread(path)
    return preprocess_array(pixels_from_dataset(ds), meta_from_dataset(ds), cfg)


# ---------------------------------------------------------------------------- text

def _ws(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def _fmt_value(v) -> str:
    s = f"{float(v):.1f}"
    return s[:-2] if s.endswith(".0") else s


def _codings(res):
    return (res.get("code") or {}).get("coding") or []


def render_text(resources: list, cfg=TEXT_CFG) -> str:
    parts = []
    for sec in cfg["sections"]:
        rs = [r for r in resources if r.get("resourceType") == sec["resourceType"]]
        if sec["kind"] == "orderReason":
            n_parts = 0
            for r in rs:
                if n_parts >= sec.get("max", len(rs)):
                    break
                reasons = []
                for rc in r.get("reasonCode") or []:
                    if rc.get("text"):
                        reasons.append(rc["text"])
                    elif rc.get("coding") and rc["coding"][0].get("display"):
                        reasons.append(rc["coding"][0]["display"])
                if reasons:
                    parts.append(_ws(sec["template"].replace("{reason}", "; ".join(reasons))))
                    n_parts += 1
        elif sec["kind"] == "priorReports":
            rs = [r for r in rs if r.get("conclusion")]
            def date(r):
                return (r.get("effectiveDateTime") or r.get("issued") or "")
            rs = sorted(rs, key=date, reverse=(sec.get("order") == "newest-first"))
            for r in rs[: sec.get("max", len(rs))]:
                parts.append(_ws(sec["template"].replace("{date}", date(r)[:10])
                                 .replace("{conclusion}", r["conclusion"])))
        elif sec["kind"] == "observations":
            for c in sec["codes"]:
                hits = [r for r in rs if any(cd.get("system") == c["system"] and cd.get("code") == c["code"]
                                             for cd in _codings(r))]
                if not hits:
                    continue
                hits = sorted(hits, key=lambda r: r.get("effectiveDateTime") or r.get("issued") or "",
                              reverse=True)
                if not sec.get("latestPerCode", True):
                    pass
                for r in hits[:1] if sec.get("latestPerCode", True) else hits:
                    if "valueQuantity" in r:
                        q = r["valueQuantity"]
                        val, unit = _fmt_value(q["value"]), q.get("unit") or q.get("code") or ""
                    elif "valueString" in r:
                        val, unit = r["valueString"], ""
                    else:
                        continue
                    parts.append(_ws(sec["template"].replace("{label}", c["label"])
                                     .replace("{value}", val).replace("{unit}", unit)))
    text = cfg["joiner"].join(p for p in parts if p)
    return text if text else cfg["empty"]


def encode_text(tok, text: str, max_length: int = 128):
    """tokenizer adds [CLS]/[SEP]; truncation by hand: first max_length-1 ids + [SEP]."""
    ids = tok.encode(text).ids
    if len(ids) > max_length:
        ids = ids[: max_length - 1] + [tok.token_to_id("[SEP]")]
    return ids


def pad_batch(id_lists, length=None):
    length = length or max(len(x) for x in id_lists)
    ids = np.zeros((len(id_lists), length), np.int64)
    mask = np.zeros((len(id_lists), length), np.int64)
    for i, x in enumerate(id_lists):
        ids[i, : len(x)] = x
        mask[i, : len(x)] = 1
    return ids, mask
