"""``stl localize IMAGE... [--label WNID ...]``: STL windows for image files."""
from __future__ import annotations

import logging
from pathlib import Path

from tqdm import tqdm

from .args import add_model_arguments, build_from_args
from .validate import positive_int

log = logging.getLogger("stl.localize")


def add_arguments(p):
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--label", nargs="+", default=None, metavar="WNID",
                   help="class(es) of the object: STL-CL (one hierarchy per class). Without: STL-WL (top-5)")
    add_model_arguments(p)
    p.add_argument("--top", type=positive_int, default=10, help="windows to print and draw")
    p.add_argument("--out", default="results/localize", help="output directory (figure + JSON per image)")
    p.add_argument("--mask-mode", choices=["box", "segment"], default=None, help="override STLConfig.mask_mode")
    p.add_argument("--appearance-feature", choices=["feature", "logits"], default=None,
                   help="override STLConfig.appearance_feature (logits = fc8 as in the paper's text)")
    p.add_argument("--merge-pairs", choices=["all", "adjacent"], default=None)
    p.add_argument("--ks", type=positive_int, nargs="+", default=None,
                   help="override the Felzenszwalb k values (paper: 50 100)")
    p.add_argument("--color-spaces", nargs="+", choices=["hsv", "lab", "rgb"], default=None,
                   help="override the colour spaces (paper: hsv lab)")


def config_from_args(args):
    import dataclasses

    from .args import stl_config_from_args

    base = stl_config_from_args(args)
    seg = base.segmentation
    if args.ks:
        seg = dataclasses.replace(seg, ks=tuple(args.ks))
    if args.color_spaces:
        seg = dataclasses.replace(seg, color_spaces=tuple(args.color_spaces))
    changes = {k: v for k, v in (("mask_mode", args.mask_mode), ("appearance_feature", args.appearance_feature),
                                 ("merge_pairs", args.merge_pairs)) if v is not None}
    return base.replace(segmentation=seg, **changes)


def main(args) -> int:
    from ..io import ImageError, read_image, write_json_atomic
    from ..core.localization import localize
    from ..models import ModelError
    from ..visualize import draw_windows

    config = config_from_args(args)
    try:
        classifier = build_from_args(args, config)
        labels = [classifier.classes.index(lab) for lab in args.label] if args.label else None
    except (ModelError, KeyError, ValueError, RuntimeError) as e:
        log.error("%s", e)
        return 2
    log.info("classifier: %s", classifier.describe())
    out = Path(args.out)
    failures = 0
    for path in args.images:
        try:
            image = read_image(path)
        except ImageError as e:
            log.error("skipping: %s", e)
            failures += 1
            continue
        mode = "STL-CL " + ",".join(classifier.classes.wnids[i] for i in labels) if labels else "STL-WL"
        with tqdm(desc=f"{Path(path).name} {mode}", unit="fwd", leave=False) as bar:
            wins = localize(image, classifier, labels, config, progress=bar)
        stem = Path(path).stem
        print(f"\n{path}  ({image.shape[1]}x{image.shape[0]}, {mode}, {wins.num_forwards} forward passes)")
        if wins.target_classes:
            print("  top-5 classes: " + "; ".join(classifier.classes.words[c].split(",")[0]
                                                for c in wins.target_classes))
        print(f"  {'#':>3} {'drop':>7}  {'box [x0 y0 x1 y1]':<28} segmentation  level")
        for i in range(min(args.top, len(wins))):
            b = wins.boxes[i]
            print(f"  {i + 1:>3} {wins.scores[i]:7.4f}  [{b[0]:6.1f} {b[1]:6.1f} {b[2]:6.1f} {b[3]:6.1f}]  "
                  f"{wins.segmentation_names[wins.segmentation[i]]:<12} {wins.level[i]:>5}")
        fig_path = out / f"{stem}_{'cl' if labels else 'wl'}.png"
        draw_windows(image, wins.boxes, wins.scores, fig_path, title=f"{Path(path).name}: {mode}", top=args.top)
        d = wins.to_dict(classifier.classes)
        d.update(image=str(path), mode=mode, model=classifier.name, config=config.to_dict())
        write_json_atomic(out / f"{stem}_{'cl' if labels else 'wl'}.json", d)
        print(f"  figure: {fig_path}\n  json:   {fig_path.with_suffix('.json')}")
    return 1 if failures else 0
