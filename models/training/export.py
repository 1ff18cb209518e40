"""ONNX export (dynamo, opset 18, dynamic N and S) and onnxruntime verification."""
from __future__ import annotations

import numpy as np
import torch

from model import ExportWrapper


def export(model, path, max_len=128):
    model.eval()
    w = ExportWrapper(model).eval()
    x = torch.randn(3, 1, 224, 224)
    ids = torch.randint(5, 50, (3, 17))
    ids[:, 0] = 2
    mask = torch.ones_like(ids)
    N = torch.export.Dim("N", min=1, max=1024)
    S = torch.export.Dim("S", min=2, max=max_len)
    prog = torch.onnx.export(
        w, (x, ids, mask), dynamo=True, opset_version=18,
        input_names=["image", "input_ids", "attention_mask"],
        output_names=["probabilities", "saliency"],
        dynamic_shapes={"image": {0: N}, "input_ids": {0: N, 1: S}, "attention_mask": {0: N, 1: S}},
        external_data=False)
    prog.optimize()
    prog.save(str(path), external_data=False)
    strip_provenance(path)
    return path


def strip_provenance(path):
    """The dynamo exporter records each node's Python stack trace (absolute source paths of the
    machine that trained it) in doc strings and metadata. They are not needed to run the model
    and must not ship, so they are removed; the graph itself is unchanged."""
    import onnx
    m = onnx.load(str(path))

    def clean_nodes(nodes):
        for node in nodes:
            node.doc_string = ""
            keep = [p for p in node.metadata_props if "stack_trace" not in p.key and "/" not in p.value]
            del node.metadata_props[:]
            node.metadata_props.extend(keep)
            for attr in node.attribute:
                if attr.g is not None:
                    clean_nodes(attr.g.node)
                for g in attr.graphs:
                    clean_nodes(g.node)

    clean_nodes(m.graph.node)
    for f in m.functions:
        clean_nodes(f.node)
        f.doc_string = ""
    m.graph.doc_string = ""
    m.doc_string = ""
    for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        vi.doc_string = ""
    keep = [p for p in m.metadata_props if "/" not in p.value]
    del m.metadata_props[:]
    m.metadata_props.extend(keep)
    onnx.save(m, str(path))


def verify(model, path, log=print, tol=1e-4):
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()], [o.name for o in sess.get_outputs()]
    assert names == (["image", "input_ids", "attention_mask"], ["probabilities", "saliency"]), names
    g = torch.Generator().manual_seed(0)
    worst = 0.0
    for n, s in [(1, 2), (1, 128), (2, 37), (5, 64), (8, 11)]:
        x = torch.randn(n, 1, 224, 224, generator=g)
        ids = torch.randint(5, 300, (n, s), generator=g)
        ids[:, 0] = 2
        mask = torch.ones(n, s, dtype=torch.int64)
        for i in range(n):                       # ragged padding
            L = int(torch.randint(2, s + 1, (1,), generator=g))
            ids[i, L - 1] = 3
            ids[i, L:] = 0
            mask[i, L:] = 0
        if n == 5:                                # ablations inside a batch
            x[1] = 0
            ids[2] = 0; ids[2, 0] = 2; ids[2, 1] = 3; mask[2] = 0; mask[2, :2] = 1
        with torch.no_grad():
            p, sal, _ = model(x, ids, mask)
        op, osal = sess.run(None, {"image": x.numpy(), "input_ids": ids.numpy(), "attention_mask": mask.numpy()})
        assert np.isfinite(op).all() and np.isfinite(osal).all()
        d = max(np.abs(op - p.numpy()).max(), np.abs(osal - sal.numpy()).max())
        worst = max(worst, d)
        log(f"onnx verify N={n} S={s}: max|diff|={d:.2e}")
    assert worst < tol, worst
    return worst
