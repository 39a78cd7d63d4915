"""``stl localize IMAGE|DIR... [--label WNID ...] [--export FORMAT]``: STL windows for image files.

A folder is searched recursively for images (:func:`stl.data.folder.image_files`). One JSON per
image (its windows as ``[x0, y0, x1, y1]`` pixel-inclusive boxes and as COCO ``[x, y, w, h]``,
the same values :meth:`stl.core.localization.Windows.to_coco` returns) and one figure; with
``--export FORMAT`` also one file of all images in a format of ``stl export``.
"""
from __future__ import annotations

import logging
from pathlib import Path

from .args import add_common_arguments, add_progress_argument, model_spec, stl_config
from .validate import positive_int

log = logging.getLogger("stl.localize")


def add_arguments(p):
    p.add_argument("images", nargs="+", metavar="IMAGE|DIR", help="image files, or folders (searched recursively)")
    p.add_argument("--label", nargs="+", action="extend", default=None, metavar="WNID",
                   help="class(es) of the object: STL-CL (one hierarchy per class; several: --label A B or "
                        "--label A --label B). Without: STL-WL (top-5)")
    add_common_arguments(p)
    add_progress_argument(p)
    p.add_argument("--top", type=positive_int, default=10, help="windows to print and draw")
    p.add_argument("--out", default="results/localize", help="output directory (figure + JSON per image)")
    from ..export import FORMATS

    p.add_argument("--export", default=None, choices=FORMATS, metavar="FORMAT",
                   help=f"also write all images' top windows in one file of this format ({', '.join(FORMATS)}; "
                        f"conventions: `stl export --help`) to --export-out")
    p.add_argument("--export-out", default=None, metavar="FILE",
                   help="the --export file (default <out>/localize.<format>.<ext>)")


def main(args) -> int:
    from ..errors import UserError, one_line
    from ..io import check_output_dir, output_names
    from ..progress import job_bar

    config = stl_config(args)
    suffix = "cl" if args.label else "wl"
    args.images, empty_folders = expand_images(args.images)
    if args.export == "coco-pseudo-gt" and not args.label:
        raise UserError("--export coco-pseudo-gt needs the images' class (--label WNID): STL-CL's boxes are the "
                        "pseudo ground truth")
    names = output_names(args.images)
    out = check_output_dir(args.out, [f"{n}_{suffix}{ext}" for n in names for ext in (".json", ".png")])
    classifier = model_spec(args).build(mean_mode=config.caffe_mean)
    labels = []
    for lab in args.label or ():
        try:
            labels.append(classifier.classes.index(lab))
        except (KeyError, ValueError) as e:  # ValueError: a "digit" that int() refuses (--label ²)
            raise UserError(f"--label: {one_line(e) if isinstance(e, KeyError) else f'unknown class {lab!r}'}") \
                from None
    labels = labels or None
    if not labels:
        try:
            config.check_classes(len(classifier.classes))
        except ValueError as e:
            raise UserError(str(e)) from None
    log.info("classifier: %s", classifier.describe())
    failures = empty_folders
    exported = []  # stl.export.ExportImage of each image, for --export
    mode = "STL-CL " + ",".join(classifier.classes.wnids[i] for i in labels) if labels else "STL-WL"
    # one bar for the command (images, moved inside an image by its forwards; stl.progress)
    job = job_bar(total=len(args.images), desc=f"localize {mode}", enabled=not args.no_progress)
    with job, job.tracking():
        failures += _localize_all(args, names, classifier, labels, config, mode, out, exported, job)
    if args.export and not write_localize_export(exported, args, out):
        failures += 1
    return 1 if failures else 0


def _localize_all(args, names, classifier, labels, config, mode, out, exported, job) -> int:
    """Localize every image (one committed to ``job`` after each); the number that failed."""
    import numpy as np

    from ..core.boxes import scale_boxes, to_xywh
    from ..core.localization import localize
    from ..export import ExportImage
    from ..io import LARGE_IMAGE_SIDE, ImageError, load_image, write_json_atomic
    from ..paths import special_file
    from ..progress import progress_bar
    from ..visualize import draw_windows

    suffix = "cl" if args.label else "wl"
    failures = 0
    for path, name in job.each(zip(args.images, names)):
        try:  # EXIF orientation applied: boxes are in the image as a photo viewer shows it
            if special_file(path):  # opening a FIFO would block until something writes to it
                raise ImageError(f"{path}: is {special_file(path)}, not an image file")
            img = load_image(path, exif_transpose=True, max_side=LARGE_IMAGE_SIDE)
        except ImageError as e:
            log.error("skipping: %s", e)
            failures += 1
            continue
        image = img.array
        # inner bar (forwards) only on a terminal: a log file gets no line per forward round
        with progress_bar(desc=f"  {Path(path).name} forwards", unit="fwd", inner=True,
                          enabled=not args.no_progress) as bar:
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
        for w, xywh in zip(d.get("windows", []), to_xywh(boxes)):
            w["bbox_xywh"] = [round(float(v), 3) for v in xywh]  # COCO [x, y, w, h], as Windows.to_coco()
        d.update(image=str(path), mode=mode, model=classifier.name, config=config.to_dict(),
                 image_size=[img.size[0], img.size[1]], exif_orientation=img.orientation,
                 orientation="displayed (EXIF applied)" if img.exif_applied else "stored", notes=notes)
        json_path = out / f"{name}_{suffix}.json"
        write_json_atomic(json_path, d)  # the result first: a failing figure loses nothing
        if args.export:
            exported.append(ExportImage(len(exported) + 1, str(path), str(path), Path(path), int(img.size[1]),
                                        int(img.size[0]), [classifier.classes.wnids[i] for i in labels]
                                        if labels else [], np.asarray(boxes, np.float64)[:args.top],
                                        np.asarray(wins.scores, np.float64)[:args.top]))
        print(f"  json:   {json_path}")
        fig_path = json_path.with_suffix(".png")
        try:
            draw_windows(image, wins.boxes, wins.scores, fig_path, title=f"{Path(path).name}: {mode}", top=args.top)
            print(f"  figure: {fig_path}")
        except (OSError, ValueError, MemoryError) as e:
            log.error("%s: figure not written (%s: %s); the JSON is", fig_path, type(e).__name__, e)
            failures += 1
    return failures


def expand_images(items):
    """The image paths of ``IMAGE|DIR`` arguments (files as given, folders' images recursive and
    sorted) and the number of folders without images: each is reported and counted as a failed
    input (exit 1), the others still run; no image at all is a usage error."""
    from ..data.folder import image_files
    from ..errors import UserError

    paths, empty = [], []
    for item in items:
        if Path(item).is_dir():
            found = image_files(item)
            if not found:
                empty.append(item)
            paths += [str(p) for p in found]
        else:
            paths.append(item)
    if not paths:
        raise UserError(f"{', '.join(map(str, items))}: no images (folders are searched recursively for "
                        f".jpg, .png, ...)")
    for item in empty:
        log.error("skipping: %s: a folder with no images (looked for .jpg, .png, ... recursively)", item)
    return paths, len(empty)


def write_localize_export(exported, args, out) -> bool:
    """The ``--export`` file of the localized images; False (logged) when there is nothing to write."""
    from ..export import EXTENSIONS, Export, categories_of, export_run

    if not exported or not any(len(im.scores) for im in exported):
        log.error("--export %s: no windows to export", args.export)
        return False
    target = Path(args.export_out) if args.export_out else out / f"localize.{args.export}{EXTENSIONS[args.export]}"
    ex = Export(target, {"method": "STL-CL" if args.label else "STL-WL"}, exported, categories_of(exported))
    for f in export_run(ex, args.export, target, per_image=1):
        print(f"export: {f}")
    return True
