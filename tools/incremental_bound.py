#!/usr/bin/env python
"""How much incremental masking could save for EfficientNet-Lite0 (issue 18, item 4): an upper
bound in multiply-accumulates, from the masked boxes STL really asks for.

A masked forward f(h_g(x, b)) (Eq. 1) differs from the unmasked forward f(x) only inside the
box b and, layer by layer, inside the receptive-field growth of b. An engine that reuses the
cached unmasked activations (:mod:`stl.models.caffe.incremental` does this for Caffe nets) needs
to recompute only those output positions. This tool runs STL-WL (the real method, ONNX Runtime
engine) on real ILSVRC val images, records the box of every masked forward, propagates each box
through Lite0's convolutions (kernel, stride and TF "SAME" padding read from the model itself:
a box [a, b] in a layer's input changes the outputs o with o*s - pad <= b and
o*s - pad + k - 1 >= a), and counts the convolution MACs over the changed output positions
against the whole net's. Pointwise layers (batch norm, ReLU6, residual adds) change only where
their input changes and are not counted; the pooling, the classifier and the crop and full-image
forwards are always whole.

It is a bound: it ignores the gather/scatter of the cached activations and the loss of batching
(every box has its own size), which make a real incremental engine slower than its MAC count.

    python tools/incremental_bound.py [--images 2] [--root ../shared/data/ilsvrc2012-val-227]
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def conv_table(net, size: int = 224):
    """Lite0's convolutions in execution order: (name, k, s, pad_top_left, H_in, H_out, MACs per output
    position), read with forward hooks on one forward (square inputs: one axis describes both)."""
    import torch

    rows = []

    def hook(name):
        def f(m, inp, out):
            pad = getattr(m, "static_padding", None)
            pl = pad.padding[0] if isinstance(pad, torch.nn.ZeroPad2d) else int(m.padding[0])
            k, s = m.kernel_size[0], m.stride[0]
            macs = k * k * (m.in_channels // m.groups) * m.out_channels
            rows.append((name, k, s, pl, inp[0].shape[-1], out.shape[-1], macs))
        return f

    handles = [m.register_forward_hook(hook(n)) for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return rows


def changed_interval(a, b, k, s, pl, n_out):
    """Outputs o of a convolution (kernel k, stride s, leading pad pl) whose window touches input
    positions [a, b]; None if none (the box is empty)."""
    lo = max(0, -(-(a + pl - k + 1) // s))
    hi = min(n_out - 1, (b + pl) // s)
    return (lo, hi) if lo <= hi else None


def box_macs(box, table):
    """MACs of the convolutions over the output positions a masked box [x0, y0, x1, y1] (input pixels,
    inclusive) changes, propagated layer by layer."""
    x = (int(np.floor(box[0])), int(np.ceil(box[2])))
    y = (int(np.floor(box[1])), int(np.ceil(box[3])))
    total = 0
    for _, k, s, pl, _, n_out, macs in table:
        x = changed_interval(*x, k, s, pl, n_out)
        y = changed_interval(*y, k, s, pl, n_out)
        if x is None or y is None:
            return total
        total += (x[1] - x[0] + 1) * (y[1] - y[0] + 1) * macs
    return total


def main(argv=None) -> int:
    from stl.core.localization import localize_batch
    from stl.data import get_dataset
    from stl.models import build_classifier
    from stl.models.efficientnet import EfficientNetLite0
    from stl.paths import shared_dir

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=str(shared_dir() / "data" / "ilsvrc2012-val-227"))
    p.add_argument("--images", type=int, default=2, help="the first N images of the 650")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the numbers here")
    args = p.parse_args(argv)

    table = conv_table(EfficientNetLite0().net)
    full = sum(n * n * macs for _, _, _, _, _, n, macs in table)
    clf = build_classifier("efficientnet_lite0", engine="onnx", threads=args.threads)
    boxes = []
    inner = clf.forward_masked

    def recording(images, index, bxs, outputs=("prob",), color=None):
        boxes.extend(np.asarray(bxs, float).tolist())
        return inner(images, index, bxs, outputs, color)

    crops = [0]
    inner_crops = clf.forward_crops

    def counting(cr, outputs=("feature",), crop_mode="center_square"):
        crops[0] += len(cr)
        return inner_crops(cr, outputs, crop_mode)

    clf.forward_masked, clf.forward_crops = recording, counting
    clf.pad_batches = False  # no filler rows: every recorded box is one STL asked for (windows unchanged)
    ds = get_dataset("ilsvrc2012_val", root=args.root, limit=args.images)
    for rec in ds:
        before = len(boxes)
        localize_batch([rec.read()], clf)
        print(f"{rec.image_id}: {len(boxes) - before} masked forwards", file=sys.stderr, flush=True)
    fr = np.array([box_macs(b, table) / full for b in boxes])
    # the other forwards of an image (its whole-image forward, the crops of s_app) stay whole
    n_masked, n_full, n_crop = len(boxes), args.images, crops[0]
    whole = n_full + n_crop + n_masked
    bound = (n_full + n_crop + fr.sum()) / whole
    out = {
        "images": args.images, "masked_forwards": n_masked, "crop_forwards": n_crop, "full_forwards": n_full,
        "conv_macs_full_forward": int(full),
        "masked_fraction_of_macs": {"mean": float(fr.mean()), "median": float(np.median(fr)),
                                    "p10": float(np.percentile(fr, 10)), "p90": float(np.percentile(fr, 90))},
        "masked_forwards_speedup_bound": float(1 / fr.mean()),
        "all_forwards_speedup_bound": float(1 / bound),
    }
    print(json.dumps(out, indent=1))
    if args.json:
        from stl.io import atomic_path

        with atomic_path(args.json) as tmp:
            open(tmp, "w").write(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
