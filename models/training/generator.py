"""Seeded synthetic chest radiograph + FHIR clinical context generator.

Every case is drawn from its own RNG stream ``default_rng([seed, split, index])`` so
a case is reproducible on its own and a different seed gives a fresh set.

Joint image + text label design (see models/README.md for the rates):
for every finding independently, a case is positive with probability PREVALENCE.
  * positives are rendered CLEAR (unambiguous image sign) or SUBTLE;
  * negatives are rendered CLEAN or with a MIMIC (skin fold, pleural thickening,
    overlapping vessels, nipple shadow).  A mimic is drawn from exactly the same
    rendering distribution as a SUBTLE positive, so the image alone cannot
    separate the two;
  * the clinical text resolves the ambiguous (SUBTLE / MIMIC) cases: subtle
    positives usually carry a supporting clue (clinical context raising the
    pretest probability, "possible small effusion", ...), mimics usually carry an
    explaining-away clue ("skin fold ... no pneumothorax", "previous pneumothorax
    has resolved", "nipple markers", ...).  For unambiguous images the text clues
    are drawn nearly independently of the label, so text alone cannot separate
    clear positives from clean negatives;
  * reports also contain negations ("no pneumothorax") and irrelevant sentences
    that carry no information, and observations shift weakly with the label;
  * finally LABEL_NOISE of the labels are flipped (all splits).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

FINDINGS = ["pneumothorax", "pleural_effusion", "consolidation", "lung_nodule"]
DISPLAY = {"pneumothorax": "Pneumothorax", "pleural_effusion": "Pleural effusion",
           "consolidation": "Consolidation", "lung_nodule": "Lung nodule"}

# ---- fixed, documented rates -------------------------------------------------
PREVALENCE = 0.30          # per finding
P_SUBTLE_POS = 0.50        # share of positives whose image sign is subtle (ambiguous)
P_MIMIC_NEG = 0.40         # share of negatives that show a mimic (ambiguous)
P_CLUE_AMBIGUOUS = 0.85    # ambiguous case carries the resolving text clue
# text clue distribution for unambiguous images: (supports, explains, neutral)
CLUE_CLEAR_POS = (0.25, 0.20, 0.55)
CLUE_CLEAN_NEG = (0.20, 0.25, 0.55)
LABEL_NOISE = 0.02         # probability each label is flipped

LOINC = [  # code, label, unit
    ("59408-5", "spo2", "%", "Oxygen saturation in Arterial blood by Pulse oximetry"),
    ("8310-5", "temp", "Cel", "Body temperature"),
    ("9279-1", "resp rate", "/min", "Respiratory rate"),
    ("8867-4", "heart rate", "/min", "Heart rate"),
    ("6690-2", "wbc", "10*3/uL", "Leukocytes [#/volume] in Blood by Automated count"),
    ("1988-5", "crp", "mg/L", "C reactive protein [Mass/volume] in Serum or Plasma"),
]

# ---- text phrase banks -------------------------------------------------------
# (where, text): where = "reason" (order reason) or "prior" (prior report conclusion)
SUPPORTS = {
    "pneumothorax": [
        ("reason", "sudden pleuritic chest pain after central line insertion"),
        ("reason", "acute dyspnoea after ct guided lung biopsy"),
        ("reason", "chest trauma with reduced breath sounds"),
        ("reason", "tall young smoker with sudden chest pain"),
        ("reason", "sudden desaturation on the ventilator"),
        ("prior", "small apical pneumothorax suspected, follow up film requested."),
    ],
    "pleural_effusion": [
        ("reason", "worsening heart failure with leg oedema"),
        ("reason", "dullness to percussion at the base"),
        ("reason", "known malignancy with increasing breathlessness"),
        ("reason", "post cardiac surgery, reduced basal air entry"),
        ("prior", "possible small effusion."),
        ("prior", "small pleural effusion, please reassess."),
    ],
    "consolidation": [
        ("reason", "fever and productive cough"),
        ("reason", "suspected community acquired pneumonia"),
        ("reason", "aspiration risk with new fever"),
        ("reason", "basal crackles and rising inflammatory markers"),
        ("prior", "possible early consolidation."),
    ],
    "lung_nodule": [
        ("reason", "staging for known colorectal cancer"),
        ("reason", "smoker with haemoptysis and weight loss"),
        ("reason", "follow up of indeterminate pulmonary nodule"),
        ("prior", "possible small nodule, ct recommended."),
    ],
}
EXPLAINS = {
    "pneumothorax": [
        ("prior", "skin fold projects over the lateral chest wall, no pneumothorax."),
        ("prior", "previous pneumothorax has resolved, residual pleural scarring."),
        ("prior", "linear skin fold artefact, no pneumothorax."),
        ("reason", "known skin fold artefact on previous films"),
    ],
    "pleural_effusion": [
        ("prior", "chronic pleural thickening at the base, stable for years."),
        ("prior", "blunted costophrenic angle from old pleural scarring, unchanged."),
        ("prior", "previous effusion has resolved, residual pleural thickening."),
        ("reason", "known old pleural thickening"),
    ],
    "consolidation": [
        ("prior", "basal opacity attributed to overlapping vessels and poor inspiration."),
        ("prior", "crowded vascular markings, no consolidation."),
        ("prior", "previous pneumonia has resolved."),
        ("reason", "poor inspiratory effort expected, bedbound patient"),
    ],
    "lung_nodule": [
        ("prior", "nipple shadows, confirmed with nipple markers."),
        ("prior", "rounded density is a nipple shadow, no nodule."),
        ("prior", "end on vessel mimicking a nodule, no further action."),
        ("reason", "nipple markers applied to check previous nipple shadow"),
    ],
}
NEGATIONS = {
    "pneumothorax": "no pneumothorax.",
    "pleural_effusion": "no pleural effusion.",
    "consolidation": "no consolidation.",
    "lung_nodule": "no focal nodule.",
}
IRRELEVANT = [
    "heart size is normal.", "degenerative changes of the thoracic spine.",
    "mediastinal contours are normal.", "nasogastric tube tip in the stomach.",
    "comparison made with previous examination.", "follow up as clinically indicated.",
    "old healed rib fracture.", "aortic unfolding.", "lungs are otherwise clear.",
]
NEUTRAL_REASONS = [
    "preoperative assessment", "routine follow up", "shortness of breath", "cough",
    "general malaise", "admission chest film", "check line position", "fall at home",
    "chest pain", "pre admission screening",
]


def uid_from(*parts) -> str:
    h = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return "2.25." + str(int.from_bytes(h[:16], "big"))


@dataclass
class Case:
    id: str
    labels: dict                  # code -> 0/1 (after label noise)
    true_labels: dict             # before label noise
    modes: dict                   # code -> clear|subtle|mimic|clean
    clues: dict                   # code -> supports|explains|neutral
    regions: dict                 # code -> [x0, y0, x1, y1] in pixels, or None
    pixels: np.ndarray            # stored values (uint8/uint16/int16)
    meta: dict                    # DICOM attributes relevant for preprocessing etc.
    resources: list = field(default_factory=list)   # FHIR resources


# ============================================================================
# image rendering
# ============================================================================

def _gauss(u, v, cu, cv, su, sv):
    return np.exp(-(((u - cu) / su) ** 2 + ((v - cv) / sv) ** 2) / 2)


def _seg_dist(u, v, a, b):
    """distance from grid points to segment a-b (normalised coords)."""
    pa_u, pa_v = u - a[0], v - a[1]
    ba_u, ba_v = b[0] - a[0], b[1] - a[1]
    t = np.clip((pa_u * ba_u + pa_v * ba_v) / (ba_u ** 2 + ba_v ** 2 + 1e-12), 0, 1)
    return np.hypot(pa_u - t * ba_u, pa_v - t * ba_v)


def render_anatomy(rng, rows, cols):
    """returns dict of layers (density, higher = more attenuating)."""
    v, u = np.mgrid[0:rows, 0:cols].astype(np.float64)
    u = (u + 0.5) / cols
    v = (v + 0.5) / rows
    cx = 0.5 + rng.normal(0, 0.015)
    bw = rng.uniform(0.40, 0.47)
    body = np.clip(1 - ((u - cx) / bw) ** 8, 0, 1)
    dens = 0.03 + 0.42 * body
    lungs = {}
    lung_mask = np.zeros_like(u, bool)
    dome_base = rng.uniform(0.76, 0.84)
    top = rng.uniform(0.09, 0.14)
    lw = rng.uniform(0.14, 0.17)
    for side, sgn in (("R", -1), ("L", 1)):
        lc = cx + sgn * rng.uniform(0.19, 0.22)
        base = dome_base + (0.02 if side == "L" else 0.0) + rng.normal(0, 0.01)
        dome = base - 0.07 * np.clip(1 - ((u - lc) / (lw * 1.1)) ** 2, 0, 1)
        # width narrows towards the apex
        wv = lw * np.sqrt(np.clip((v - top) / 0.22, 0, 1))
        m = (np.abs(u - lc) < wv) & (v < dome) & (v > top)
        # medial boundary: mediastinum
        m &= np.abs(u - cx) > 0.06
        lungs[side] = dict(mask=m, lc=lc, dome=dome, base=base, sgn=sgn)
        lung_mask |= m
    # lungs are air-filled
    lung_soft = ndimage.gaussian_filter(lung_mask.astype(float), 1.0)
    heart = _gauss(u, v, cx + rng.uniform(0.04, 0.08), rng.uniform(0.62, 0.68),
                   rng.uniform(0.11, 0.14), rng.uniform(0.09, 0.11))
    heart = np.clip(heart * 1.8, 0, 1)
    lung_soft = lung_soft * (1 - 0.8 * heart)
    dens = dens - 0.30 * lung_soft
    # below diaphragm: abdomen
    dome_all = np.minimum(lungs["R"]["dome"], lungs["L"]["dome"])
    abdomen = (v > np.where(u < cx, lungs["R"]["dome"], lungs["L"]["dome"])) & (body > 0.5)
    dens = dens + 0.12 * ndimage.gaussian_filter(abdomen.astype(float), 1.5)
    # mediastinum + heart
    med = np.clip(1 - (np.abs(u - cx) / 0.07) ** 4, 0, 1) * (v > 0.05) * (v < 0.85)
    dens = dens + 0.25 * med + 0.08 * heart
    # vessels (lung markings), kept as separate layer so a pneumothorax can remove them
    vessels = np.zeros_like(u)
    for side in ("R", "L"):
        L = lungs[side]
        hil = (cx + L["sgn"] * 0.08, 0.45 + rng.normal(0, 0.01))
        for _ in range(22):
            ang = rng.uniform(-2.4, 2.4)
            ln = rng.uniform(0.08, 0.25)
            t = np.linspace(0, 1, 80)
            bu = hil[0] + L["sgn"] * abs(np.cos(ang)) * ln * t + rng.normal(0, 0.01) * t ** 2
            bv = hil[1] + np.sin(ang) * ln * 1.2 * t
            xi = np.clip((bu * cols).astype(int), 0, cols - 1)
            yi = np.clip((bv * rows).astype(int), 0, rows - 1)
            np.add.at(vessels, (yi, xi), 0.05 * (1.3 - t) * rng.uniform(0.6, 1.2))
    vessels = np.minimum(ndimage.gaussian_filter(vessels, 0.8) * 2.5, 0.08)
    tex = ndimage.gaussian_filter(rng.normal(0, 1, u.shape), 2.0)
    vessels = (vessels + 0.02 * tex) * lung_soft
    # ribs: posterior arcs + clavicles
    bones = np.zeros_like(u)
    for side in ("R", "L"):
        L = lungs[side]
        sp = rng.uniform(0.062, 0.07)
        r0 = top - 0.02
        curve = r0 + 0.9 * (u - (cx + L["sgn"] * 0.05)) ** 2 - 0.15 * np.abs(u - cx) + 0.02
        ph = (v - curve) / sp
        dist = (ph - np.round(ph)) * sp
        sidem = (L["sgn"] * (u - cx) > 0.03) & (body > 0.3) & (ph > -0.5) & (ph < 9.5)
        bones += 0.07 * np.exp(-(dist / 0.010) ** 2 / 2) * sidem
        clav = 0.09 - 0.15 * (np.abs(u - cx) - 0.12) + rng.normal(0, 0.005)
        bones += 0.10 * np.exp(-((v - clav) / 0.012) ** 2 / 2) * (L["sgn"] * (u - cx) > 0.02) \
            * (np.abs(u - cx) < 0.35)
    spine = np.clip(1 - (np.abs(u - cx) / 0.035) ** 4, 0, 1) * 0.08
    return dict(u=u, v=v, cx=cx, dens=dens, vessels=vessels, bones=bones + spine,
                lungs=lungs, lung_mask=lung_mask, dome_all=dome_all, lw=lw, top=top)


def _bbox(mask, rows, cols):
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def add_pneumothorax(rng, A, strength):
    side = rng.choice(["R", "L"])
    L = A["lungs"][side]
    rows, cols = L["mask"].shape
    dist = ndimage.distance_transform_edt(L["mask"]) / cols       # normalised
    if strength == "clear":
        w = rng.uniform(0.035, 0.07)
        luc, line = rng.uniform(0.07, 0.10), rng.uniform(0.10, 0.14)
    else:  # subtle / mimic
        w = rng.uniform(0.012, 0.022)
        luc, line = rng.uniform(0.025, 0.04), rng.uniform(0.05, 0.07)
    v, u = A["v"], A["u"]
    lat = L["sgn"] * (u - L["lc"])
    region_ok = (v < A["top"] + 0.45) & ((lat > -0.02) | (v < A["top"] + 0.12))
    rim = L["mask"] & (dist < w) & region_ok
    pleura = L["mask"] & (np.abs(dist - w) < 0.6 / cols + 0.002) & region_ok
    A["vessels"] *= 1 - ndimage.gaussian_filter(rim.astype(float), 0.7)
    A["dens"] -= luc * ndimage.gaussian_filter(rim.astype(float), 0.7)
    A["dens"] += line * pleura
    return _bbox(rim | pleura, rows, cols)


def add_effusion(rng, A, strength):
    side = rng.choice(["R", "L"])
    L = A["lungs"][side]
    rows, cols = L["mask"].shape
    u, v = A["u"], A["v"]
    lat = np.clip(L["sgn"] * (u - L["lc"]) / A["lw"], -1, 1)   # -1 medial .. 1 lateral
    if strength == "clear":
        H = rng.uniform(0.08, 0.18)
        h = H * (0.55 + 0.45 * (lat + 1) / 2) ** 2
        amp = rng.uniform(0.22, 0.30)
    else:
        H = rng.uniform(0.025, 0.04)
        h = H * np.clip(lat, 0, 1) ** 1.5
        amp = rng.uniform(0.16, 0.22)
    region = L["mask"] & (v > L["dome"] - h)
    dilated = ndimage.binary_dilation(region, iterations=1) & L["mask"]
    soft = ndimage.gaussian_filter(dilated.astype(float), 1.2)
    A["dens"] += amp * soft
    A["vessels"] *= 1 - soft
    return _bbox(region, rows, cols)


def add_consolidation(rng, A, strength):
    side = rng.choice(["R", "L"])
    L = A["lungs"][side]
    rows, cols = L["mask"].shape
    u, v = A["u"], A["v"]
    zone = rng.choice(["upper", "middle", "lower"])
    cv = {"upper": 0.25, "middle": 0.45, "lower": 0.62}[zone] + rng.normal(0, 0.03)
    cu = L["lc"] + L["sgn"] * rng.uniform(-0.03, 0.06)
    if strength == "clear":
        n, sz, amp = rng.integers(4, 8), rng.uniform(0.035, 0.06), rng.uniform(0.15, 0.22)
    else:
        n, sz, amp = rng.integers(2, 4), rng.uniform(0.025, 0.04), rng.uniform(0.06, 0.085)
    blob = np.zeros_like(u)
    for _ in range(n):
        blob = np.maximum(blob, _gauss(u, v, cu + rng.normal(0, sz), cv + rng.normal(0, sz),
                                       sz * rng.uniform(0.7, 1.3), sz * rng.uniform(0.7, 1.3)))
    tex = ndimage.gaussian_filter(rng.normal(0, 1, u.shape), 1.5)
    patchy = np.clip(blob * (1 + 0.6 * tex / (tex.std() + 1e-9)), 0, 1.3)
    patchy *= ndimage.gaussian_filter(L["mask"].astype(float), 1.0)
    A["dens"] += amp * patchy
    return _bbox(patchy > 0.35, rows, cols)


def add_nodule(rng, A, strength, px_mm):
    side = rng.choice(["R", "L"])
    L = A["lungs"][side]
    rows, cols = L["mask"].shape
    u, v = A["u"], A["v"]
    if strength == "clear":
        diam = rng.uniform(9, 25)
        amp = rng.uniform(0.14, 0.22)
        cv = rng.uniform(0.22, 0.68)
        cu = L["lc"] + rng.uniform(-0.6, 0.6) * A["lw"]
    else:  # subtle nodule or nipple shadow / end-on vessel: same distribution
        diam = rng.uniform(5, 9)
        amp = rng.uniform(0.08, 0.11)
        cv = rng.uniform(0.55, 0.70)
        cu = L["lc"] + L["sgn"] * rng.uniform(0.0, 0.5) * A["lw"]
    r = diam / 2 / px_mm / cols          # radius in normalised units
    d = np.hypot(u - cu, (v - cv) * rows / cols)
    nod = np.clip((r - d) / (0.7 / cols) + 0.5, 0, 1) * np.sqrt(np.clip(1 - (d / (r + 1e-9)) ** 2, 0, 1) + 0.2)
    nod = nod / (nod.max() + 1e-9)
    A["dens"] += amp * nod
    return _bbox(nod > 0.3, rows, cols)


def render_image(rng, rows, cols, modes):
    A = render_anatomy(rng, rows, cols)
    px_mm = 380.0 / cols
    regions = {}
    adders = {"pneumothorax": add_pneumothorax, "pleural_effusion": add_effusion,
              "consolidation": add_consolidation}
    for code in FINDINGS:
        m = modes[code]
        if m == "clean":
            regions[code] = None
            continue
        strength = "clear" if m == "clear" else "subtle"
        if code == "lung_nodule":
            regions[code] = add_nodule(rng, A, strength, px_mm)
        else:
            regions[code] = adders[code](rng, A, strength)
    img = A["dens"] + A["vessels"] + A["bones"]
    img = ndimage.gaussian_filter(img, rng.uniform(0.4, 0.9))
    # acquisition: contrast / gamma / noise
    img = np.clip(img, 0, 1.2) / 1.2
    img = img ** rng.uniform(0.75, 1.35)
    img = img * rng.uniform(0.85, 1.0) + rng.uniform(0.0, 0.08)
    img = img + rng.normal(0, rng.uniform(0.004, 0.02), img.shape)
    return np.clip(img, 0, 1), regions


def encode_pixels(rng, img, bits_choice=None):
    """display intensity [0,1] (MONOCHROME2 sense) -> stored values + metadata."""
    bits = bits_choice or int(rng.choice([8, 12, 16], p=[0.45, 0.30, 0.25]))
    alloc = 8 if bits == 8 else 16
    signed = bits > 8 and rng.random() < 0.3
    mono1 = rng.random() < 0.3
    d = 1 - img if mono1 else img
    lo_full = -(2 ** (bits - 1)) if signed else 0
    hi_full = (2 ** (bits - 1) - 1) if signed else 2 ** bits - 1
    span = (hi_full - lo_full) * rng.uniform(0.55, 0.95)
    off = lo_full + rng.uniform(0, (hi_full - lo_full) - span)
    stored = np.clip(np.round(off + d * span), lo_full, hi_full)
    if alloc == 8:
        stored = stored.astype(np.uint8)
    elif signed:
        stored = stored.astype(np.int16)
    else:
        stored = stored.astype(np.uint16)
    meta = dict(BitsAllocated=alloc, BitsStored=bits, HighBit=bits - 1,
                PixelRepresentation=1 if signed else 0,
                PhotometricInterpretation="MONOCHROME1" if mono1 else "MONOCHROME2")
    slope, icpt = 1.0, 0.0
    if rng.random() < 0.4:
        slope = float(rng.choice([0.25, 0.5, 1.0, 2.0]))
        icpt = float(rng.choice([-1024.0, -512.0, 0.0, 100.0]))
        meta["RescaleSlope"] = slope
        meta["RescaleIntercept"] = icpt
        meta["RescaleType"] = "US"
    if rng.random() < 0.5:
        mv = stored.astype(np.float64) * slope + icpt
        lo, hi = np.percentile(mv, [rng.uniform(0, 2), rng.uniform(98, 100)])
        c = (lo + hi) / 2 + rng.normal(0, 0.02) * (hi - lo)
        w = max((hi - lo) * rng.uniform(0.95, 1.15), 2.0)
        meta["WindowCenter"] = round(float(c), 1)
        meta["WindowWidth"] = round(float(w), 1)
    return stored, meta


# ============================================================================
# clinical text (FHIR)
# ============================================================================

def _choose(rng, items):
    return items[int(rng.integers(len(items)))]


def _fmt1(x):
    return float(round(float(x), 1))


def make_resources(rng, case_id, labels, clues, study_date, acsn, pid):
    pat_id = f"pat-{case_id}"
    subj = {"reference": f"Patient/{pat_id}"}
    sex = str(rng.choice(["male", "female"]))
    byear = int(rng.integers(1935, 2004))
    patient = {"resourceType": "Patient", "id": pat_id,
               "identifier": [{"system": "urn:pacs-triage:synthetic:mrn", "value": pid}],
               "name": [{"family": "SYNTH", "given": [case_id.upper()]}],
               "gender": sex, "birthDate": f"{byear}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"}
    reasons, prior_sents = [], []
    for code in FINDINGS:
        c = clues[code]
        if c == "neutral":
            continue
        where, txt = _choose(rng, SUPPORTS[code] if c == "supports" else EXPLAINS[code])
        (reasons if where == "reason" else prior_sents).append(txt)
    if not reasons or rng.random() < 0.35:
        reasons.insert(int(rng.integers(len(reasons) + 1)), _choose(rng, NEUTRAL_REASONS))
    order = list(rng.permutation(len(reasons)))
    reasons = [reasons[i] for i in order]
    # distractors: negations (label independent) + irrelevant sentences
    for code in FINDINGS:
        if rng.random() < 0.2:
            prior_sents.append(NEGATIONS[code])
    if rng.random() < 0.5:
        prior_sents.append(_choose(rng, IRRELEVANT))
    n_rep = int(rng.choice([0, 1, 2], p=[0.3, 0.45, 0.25]))
    if prior_sents:
        n_rep = max(n_rep, 1)
    prior_sents = [prior_sents[i] for i in rng.permutation(len(prior_sents))]
    reports = [[] for _ in range(n_rep)]
    for i, s in enumerate(prior_sents):
        reports[i % n_rep if n_rep else 0].append(s)
    y, mo, dd = int(study_date[:4]), int(study_date[4:6]), int(study_date[6:8])
    sr = {"resourceType": "ServiceRequest", "id": f"sr-{case_id}", "status": "active",
          "intent": "order", "subject": subj,
          "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                               "code": "ACSN"}]},
                          "system": "urn:pacs-triage:synthetic:accession", "value": acsn}],
          "code": {"coding": [{"system": "http://loinc.org", "code": "36643-5",
                               "display": "XR Chest 2 Views"}], "text": "XR chest"},
          "authoredOn": f"{y:04d}-{mo:02d}-{dd:02d}",
          "reasonCode": [{"text": r} for r in reasons]}
    res = [patient, sr]
    for i, sents in enumerate(reports):
        if not sents:
            sents = [_choose(rng, IRRELEVANT)]
        py = y - 1 - i - int(rng.integers(0, 2))
        date = f"{py:04d}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"
        dr = {"resourceType": "DiagnosticReport", "id": f"dr-{case_id}-{i + 1}", "status": "final",
              "code": {"coding": [{"system": "http://loinc.org", "code": "36643-5",
                                   "display": "XR Chest 2 Views"}]},
              "subject": subj, "conclusion": " ".join(sents)}
        if rng.random() < 0.85:
            dr["effectiveDateTime"] = date + "T10:00:00Z"
        dr["issued"] = date + "T14:30:00Z"
        res.append(dr)
    # observations, weakly label dependent
    P = labels
    gen = {
        "59408-5": lambda: min(100, round(rng.normal(96 - 1.5 * P["pneumothorax"] - 0.8 * P["consolidation"], 2.2))),
        "8310-5": lambda: _fmt1(rng.normal(37.0 + 0.35 * P["consolidation"], 0.6)),
        "9279-1": lambda: round(rng.normal(17 + 1.5 * P["pneumothorax"] + 1.0 * P["pleural_effusion"], 3.5)),
        "8867-4": lambda: round(rng.normal(82 + 4 * P["pneumothorax"], 13)),
        "6690-2": lambda: _fmt1(max(1.5, rng.normal(8.5 + 1.2 * P["consolidation"], 3.0))),
        "1988-5": lambda: _fmt1(max(0.5, rng.lognormal(np.log(12) + 0.5 * P["consolidation"], 1.0))),
    }
    k = 0
    for code, label, unit, disp in LOINC:
        if rng.random() > 0.8:
            continue
        n = 2 if rng.random() < 0.2 else 1
        for j in range(n):
            k += 1
            val = gen[code]()
            hour = 8 + j * 3 + int(rng.integers(0, 2))
            vq = {"value": val, "system": "http://unitsofmeasure.org", "code": unit}
            if rng.random() < 0.9:
                vq = {"value": val, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
            cat = "laboratory" if code in ("6690-2", "1988-5") else "vital-signs"
            res.append({"resourceType": "Observation", "id": f"obs-{case_id}-{k}", "status": "final",
                        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                                  "code": cat}]}],
                        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": disp}]},
                        "subject": subj,
                        "effectiveDateTime": f"{y:04d}-{mo:02d}-{dd:02d}T{hour:02d}:{int(rng.integers(0, 60)):02d}:00Z",
                        "valueQuantity": vq})
    # shuffle so renderers must order (newest-first / latest-per-code) themselves
    head, tail = res[:2], res[2:]
    tail = [tail[i] for i in rng.permutation(len(tail))]
    return head + tail


# ============================================================================
# case
# ============================================================================

def _mode_and_clue(rng, y):
    if y:
        mode = "subtle" if rng.random() < P_SUBTLE_POS else "clear"
    else:
        mode = "mimic" if rng.random() < P_MIMIC_NEG else "clean"
    if mode == "subtle":
        clue = "supports" if rng.random() < P_CLUE_AMBIGUOUS else "neutral"
    elif mode == "mimic":
        clue = "explains" if rng.random() < P_CLUE_AMBIGUOUS else "neutral"
    else:
        p = CLUE_CLEAR_POS if mode == "clear" else CLUE_CLEAN_NEG
        clue = str(rng.choice(["supports", "explains", "neutral"], p=p))
    return mode, clue


def make_case(seed, split, index, case_id, size_range=(128, 256), force=None):
    """force: optional dict code -> mode (clear|subtle|mimic|clean) and clue overrides
    {'clue:<code>': ...}; labels then follow the modes without label noise."""
    rng = np.random.default_rng([seed, split, index])
    true, modes, clues, labels = {}, {}, {}, {}
    for code in FINDINGS:
        y = int(rng.random() < PREVALENCE)
        if force and code in force:
            modes[code] = force[code]
            y = int(force[code] in ("clear", "subtle"))
            _, clue = _mode_and_clue(rng, y)
            clues[code] = force.get("clue:" + code, clue)
        else:
            modes[code], clues[code] = _mode_and_clue(rng, y)
        true[code] = y
        flip = rng.random() < LABEL_NOISE and not force
        labels[code] = 1 - y if flip else y
    rows = int(rng.integers(size_range[0], size_range[1] + 1))
    cols = int(np.clip(rows * rng.uniform(0.85, 1.15), size_range[0], size_range[1]))
    img, regions = render_image(rng, rows, cols, modes)
    stored, meta = encode_pixels(rng, img)
    meta["Rows"], meta["Columns"] = rows, cols
    meta["PixelSpacing"] = [round(380.0 / cols, 4)] * 2
    study_year = int(rng.integers(2021, 2026))
    study_date = f"{study_year}{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}"
    study_time = f"{int(rng.integers(0, 24)):02d}{int(rng.integers(0, 60)):02d}{int(rng.integers(0, 60)):02d}"
    acsn = f"SYN{seed % 1000:03d}{split}{index:05d}"
    pid = f"SYN-{seed}-{split}-{index:05d}"
    meta.update(StudyDate=study_date, StudyTime=study_time, AccessionNumber=acsn, PatientID=pid,
                PatientName=f"SYNTH^{case_id.upper()}",
                ViewPosition=str(rng.choice(["PA", "AP"], p=[0.7, 0.3])),
                Modality=str(rng.choice(["CR", "DX"])),
                StudyInstanceUID=uid_from(seed, split, index, "study"),
                SeriesInstanceUID=uid_from(seed, split, index, "series"),
                SOPInstanceUID=uid_from(seed, split, index, "sop"))
    resources = make_resources(rng, case_id, true, clues, study_date, acsn, pid)
    return Case(case_id, labels, true, modes, clues, regions, stored, meta, resources)


def write_dicom(case: Case, path):
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    m = case.meta
    sop_class = "1.2.840.10008.5.1.4.1.1.1" if m["Modality"] == "CR" else "1.2.840.10008.5.1.4.1.1.1.1"
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = sop_class
    fm.MediaStorageSOPInstanceUID = m["SOPInstanceUID"]
    fm.TransferSyntaxUID = ExplicitVRLittleEndian
    fm.ImplementationClassUID = "2.25.329800735698586629295641978511506172918"
    fm.ImplementationVersionName = "PACSTRIAGE_SYN"
    ds = Dataset()
    ds.file_meta = fm
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = m["SOPInstanceUID"]
    ds.StudyDate = m["StudyDate"]
    ds.SeriesDate = m["StudyDate"]
    ds.ContentDate = m["StudyDate"]
    ds.StudyTime = m["StudyTime"]
    ds.SeriesTime = m["StudyTime"]
    ds.ContentTime = m["StudyTime"]
    ds.AccessionNumber = m["AccessionNumber"]
    ds.Modality = m["Modality"]
    ds.Manufacturer = "pacs-triage synthetic"
    ds.InstitutionName = "pacs-triage synthetic"
    ds.ReferringPhysicianName = "SYNTH^REFERRER"
    ds.StudyDescription = "XR CHEST"
    ds.SeriesDescription = f"CHEST {m['ViewPosition']}"
    ds.PatientName = m["PatientName"]
    ds.PatientID = m["PatientID"]
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = m["ViewPosition"]
    ds.StudyInstanceUID = m["StudyInstanceUID"]
    ds.SeriesInstanceUID = m["SeriesInstanceUID"]
    ds.StudyID = m["AccessionNumber"][-6:]
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ["L", "F"] if m["ViewPosition"] == "AP" else ["R", "F"]
    if m["Modality"] == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.ImagerPixelSpacing = m["PixelSpacing"]
    else:
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PixelSpacing = m["PixelSpacing"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = m["PhotometricInterpretation"]
    ds.Rows = m["Rows"]
    ds.Columns = m["Columns"]
    ds.BitsAllocated = m["BitsAllocated"]
    ds.BitsStored = m["BitsStored"]
    ds.HighBit = m["HighBit"]
    ds.PixelRepresentation = m["PixelRepresentation"]
    if "RescaleSlope" in m:
        ds.RescaleIntercept = f"{m['RescaleIntercept']:g}"
        ds.RescaleSlope = f"{m['RescaleSlope']:g}"
        ds.RescaleType = "US"
    if "WindowCenter" in m:
        ds.WindowCenter = f"{m['WindowCenter']:.1f}"
        ds.WindowWidth = f"{m['WindowWidth']:.1f}"
    ds.BurnedInAnnotation = "NO"
    ds.PixelData = np.ascontiguousarray(case.pixels).astype(case.pixels.dtype.newbyteorder("<")).tobytes()
    try:
        ds.save_as(path, enforce_file_format=True)        # pydicom >= 3
    except TypeError:                                     # pydicom 2.x: same file (preamble + meta)
        ds.save_as(path, write_like_original=False)
