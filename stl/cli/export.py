"""``stl export RUN.h5 --format F [--top N] [--out FILE]``: a stored run in the file a detector reads.

    stl export results/runs/folder_photos/STL-CL__efficientnet_lite0.h5 --format coco-pseudo-gt --out gt.json

Boxes are in the ORIGINAL image's pixels; each format's convention is listed in ``--help``
(:data:`stl.export.CONVENTIONS`). Every file is written atomically (all or none).
"""
from __future__ import annotations

import argparse

from .validate import positive_int


def _epilog() -> str:
    import textwrap

    from ..export import CONVENTIONS

    lines = [textwrap.fill("formats (a run's windows are 0-based pixel-inclusive [x0, y0, x1, y1] in the original "
                           "image; each format converts them to its consumer's convention):", 100)]
    lines += [textwrap.fill(f"{name}: {text}", 100, initial_indent="  ", subsequent_indent="      ")
              for name, text in CONVENTIONS.items()]
    lines.append(textwrap.fill("Images are numbered 1..N in the run's order in every format (COCO image_id, "
                               "detectron2 ids). Categories: the dataset's image-level labels (ids 1..C in "
                               "first-seen order), or one 'object'.", 100))
    return "\n".join(lines)


def add_arguments(p):
    from ..export import FORMATS

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = _epilog()
    p.add_argument("run", help="a run file written by `stl run` (RUN.h5)")
    p.add_argument("--format", required=True, choices=FORMATS, help="the consumer's file format (see below)")
    p.add_argument("--top", type=positive_int, default=None,
                   help="the best N windows per image (default: all stored, at most 5000)")
    p.add_argument("--per-image", type=positive_int, default=1,
                   help="coco-pseudo-gt: boxes per image and label (default 1: STL-CL's top-1)")
    p.add_argument("--draw", default=None, metavar="FIGURE.png",
                   help="also draw the exported boxes on the images (a panel per image, the first 12; "
                        "coco-pseudo-gt: its --per-image boxes, else the top 5)")
    p.add_argument("--out", default=None,
                   help="output file (default: next to the run, RUN.<format>.<ext>); coco also writes "
                        "<out stem>_images.json, fast-rcnn-mat the image-set order <out>.txt")


def main(args) -> int:
    from ..export import default_out, draw_export, export_run, read_export

    ex = read_export(args.run, args.top)
    out = args.out if args.out is not None else default_out(args.run, args.format)
    files = export_run(ex, args.format, out, per_image=args.per_image)
    method = ex.meta.get("method", "?")
    print(f"{args.run}: {method}, {len(ex.images)} images, {ex.num_windows} windows, "
          f"{len(ex.categories)} categories -> {args.format}")
    if ex.failures:
        print(f"  note: {len(ex.failures)} image(s) failed in the run and are not exported "
              f"(e.g. {next(iter(ex.failures))})")
    if args.format == "coco-pseudo-gt" and str(method).upper() != "STL-CL":
        print(f"  note: pseudo ground truth from {method}; the paper's is STL-CL's top-1 (stl run --method STL-CL)")
    for f in files:
        print(f"  wrote {f}")
    if args.draw:
        n = args.per_image if args.format == "coco-pseudo-gt" else min(5, args.top or 5)
        print(f"  figure {draw_export(ex, args.draw, per_image=n)}")
    return 0
