#!/usr/bin/env python
"""A proposal method on VOC images at full size and stretched to 227 x 227 (the size of the
../shared ILSVRC images), boxes mapped back to the original pixels, both evaluated with the
authors' protocol -- how much the stretch changes a segmentation-based method
(docs/selective_search.md).

    python tools/proposals_at_227.py [--root ../shared/data/voc2007-test-sample] [--method SELSEARCH]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main(argv=None) -> int:
    from stl.core.boxes import scale_boxes
    from stl.core.localization import resize_to_input
    from stl.data import get_dataset
    from stl.evaluation import evaluate
    from stl.io import read_image
    from stl.paths import shared_dir
    from stl.proposals import build_method

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=str(shared_dir() / "data" / "voc2007-test-sample"), help="VOCdevkit root")
    p.add_argument("--method", default="SELSEARCH")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--n", type=int, nargs="+", default=[1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000])
    args = p.parse_args(argv)
    ds = get_dataset("voc2007_test", root=args.root, limit=args.limit)
    method = build_method(args.method)
    props = {"full": {}, "227": {}}
    counts = {"full": [], "227": []}
    t0 = time.process_time()
    for rec in ds:
        im = read_image(rec.path)
        props["full"][rec.image_id] = method.propose(im)
        small = resize_to_input(im, (227, 227), "antialiased")
        b, s = method.propose(small)
        props["227"][rec.image_id] = (scale_boxes(b, (227, 227), im.shape[:2]), s)
        counts["full"].append(len(props["full"][rec.image_id][0]))
        counts["227"].append(len(b))
    out = {"method": args.method, "images": len(ds), "cpu_seconds": round(time.process_time() - t0, 1),
           "boxes_per_image": {k: round(float(np.mean(v)), 1) for k, v in counts.items()}}
    for size, pr in props.items():
        r = evaluate(ds, pr, num_windows=args.n)
        out[size] = {"recall": {n: round(100 * r.at(n)["recall"], 1) for n in args.n},
                     "precision": {n: round(100 * r.at(n)["precision"], 1) for n in args.n}}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
