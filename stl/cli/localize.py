"""``stl localize IMAGE... [--label WNID ...]``: STL windows for image files."""
from __future__ import annotations

import logging
from pathlib import Path

from tqdm import tqdm

from .args import add_common_arguments, model_spec, stl_config
from .validate import positive_int

log = logging.getLogger("stl.localize")


def add_arguments(p):
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--label", nargs="+", default=None, metavar="WNID",
                   help="class(es) of the object: STL-CL (one hierarchy per class). Without: STL-WL (top-5)")
    add_common_arguments(p)
    p.add_argument("--top", type=positive_int, default=10, help="windows to print and draw")
    p.add_argument("--out", default="results/localize", help="output directory (figure + JSON per image)")


def main(args) -> int:
    from ..core.boxes import scale_boxes
    from ..core.localization import localize
    from ..errors import UserError, one_line
    from ..io import LARGE_IMAGE_SIDE, ImageError, check_output_dir, load_image, output_names, write_json_atomic
    from ..visualize import draw_windows

    config = stl_config(args)
    suffix = "cl" if args.label else "wl"
    names = output_names(args.images)
    out = check_output_dir(args.out, [f"{n}_{suffix}{ext}" for n in names for ext in (".json", ".png")])
    classifier = model_spec(args).build(mean_mode=config.caffe_mean)
    try:
        labels = [classifier.classes.index(lab) for lab in args.label] if args.label else None
    except KeyError as e:
        raise UserError(f"--label: {one_line(e)}") from None
    log.info("classifier: %s", classifier.describe())
    failures = 0
    # the bar only on a terminal (disable=None), where log lines go through tqdm.write
    images = tqdm(list(zip(args.images, names)), desc="images", unit="img", dynamic_ncols=True,
                  disable=True if len(args.images) < 2 else None)
    for path, name in images:
        try:  # EXIF orientation applied: boxes are in the image as a photo viewer shows it
            img = load_image(path, exif_transpose=True, max_side=LARGE_IMAGE_SIDE)
        except ImageError as e:
            log.error("skipping: %s", e)
            failures += 1
            continue
        image = img.array
        mode = "STL-CL " + ",".join(classifier.classes.wnids[i] for i in labels) if labels else "STL-WL"
        with tqdm(desc=f"{Path(path).name} {mode}", unit="fwd", leave=False) as bar:
            wins = localize(image, classifier, labels, config, progress=bar)
        boxes = wins.boxes
        if img.reduced:  # decoded reduced (huge file): boxes back to the full image's pixels
            boxes = scale_boxes(boxes, image.shape[:2], img.size)
        notes = []
        if img.exif_applied:
            notes.append(f"EXIF orientation {img.orientation} applied: boxes are in the displayed orientation")
        if img.reduced:
            notes.append(f"decoded reduced to {image.shape[1]}x{image.shape[0]} (STL works at the network input)")
        print(f"\n{path}  ({img.size[1]}x{img.size[0]}, {mode}, {wins.num_forwards} forward passes)")
        for n in notes:
            print(f"  note: {n}")
        if wins.target_classes:
            print("  top-5 classes: " + "; ".join(classifier.classes.words[c].split(",")[0]
                                                for c in wins.target_classes))
        print(f"  {'#':>3} {'drop':>7}  {'box [x0 y0 x1 y1]':<28} segmentation  level")
        for i in range(min(args.top, len(wins))):
            b = boxes[i]
            print(f"  {i + 1:>3} {wins.scores[i]:7.4f}  [{b[0]:6.1f} {b[1]:6.1f} {b[2]:6.1f} {b[3]:6.1f}]  "
                  f"{wins.segmentation_names[wins.segmentation[i]]:<12} {wins.level[i]:>5}")
        d = wins.to_dict(classifier.classes)
        if img.reduced:
            for w, b in zip(d.get("windows", []), boxes):
                w["box"] = [round(float(v), 2) for v in b]
        d.update(image=str(path), mode=mode, model=classifier.name, config=config.to_dict(),
                 image_size=[img.size[0], img.size[1]], exif_orientation=img.orientation,
                 orientation="displayed (EXIF applied)" if img.exif_applied else "stored", notes=notes)
        json_path = out / f"{name}_{suffix}.json"
        write_json_atomic(json_path, d)  # the result first: a failing figure loses nothing
        print(f"  json:   {json_path}")
        fig_path = json_path.with_suffix(".png")
        try:
            draw_windows(image, wins.boxes, wins.scores, fig_path, title=f"{Path(path).name}: {mode}", top=args.top)
            print(f"  figure: {fig_path}")
        except (OSError, ValueError, MemoryError) as e:
            log.error("%s: figure not written (%s: %s); the JSON is", fig_path, type(e).__name__, e)
            failures += 1
    return 1 if failures else 0
