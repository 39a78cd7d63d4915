"""``stl demo``: STL-WL and STL-CL with the bundled EfficientNet-Lite0 on the bundled sample.

Reads the bundled sample (``stl/resources/sample/annotations.json``) (real scikit-image photos with boxes and
ImageNet labels annotated by us), runs both variants (they share one forward
cache per image), and writes one figure per image and variant, an overview
figure and a JSON summary under ``--out``.
"""
from __future__ import annotations

import logging
import time

from .args import add_common_arguments, add_progress_argument, model_spec, stl_config
from .validate import positive_int

log = logging.getLogger("stl.demo")

def add_arguments(p):
    add_common_arguments(p)
    add_progress_argument(p)
    p.add_argument("--out", default="results/demo")
    p.add_argument("--images", nargs="*", default=None, help="ids of sample images (default: all)")
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N sample images")
    p.add_argument("--top", type=positive_int, default=5)


def main(args) -> int:
    from ..core.boxes import iou_matrix
    from ..io import ImageError, atomic_path, check_output_dir, write_json_atomic
    from ..core.localization import ImageContext, localize_batch
    from ..progress import job_bar, progress_bar
    from ..visualize import draw_windows

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..data import get_dataset

    sample = get_dataset("sample")
    unknown = [i for i in (args.images or []) if i not in sample]
    if unknown:
        from ..errors import UserError

        raise UserError(f"--images: unknown sample image(s) {', '.join(unknown)}; "
                        f"the sample has: {', '.join(sample.image_ids)}")
    out = check_output_dir(args.out)
    records = [r for r in sample if not args.images or r.image_id in args.images][:args.limit]
    model, config = model_spec(args), stl_config(args)
    classifier = model.build(mean_mode=config.caffe_mean)
    log.info("classifier: %s", classifier.describe())
    images, ok = [], []
    for r in records:
        try:
            images.append(r.read())
            ok.append(r)
        except ImageError as e:
            log.error("skipping sample image: %s", e)
    contexts = [ImageContext(im, classifier, config) for im in images]
    t0 = time.time()
    summary = []
    results = {"wl": [], "cl": []}
    # one image at a time (STL-WL and STL-CL share its forward cache): one bar of images, moved
    # inside an image by its forwards (two phases: WL then CL; stl.progress)
    job = job_bar(total=len(ok), desc="STL demo (WL+CL)", phases=2, enabled=not args.no_progress)
    with job, job.tracking():
        for r, ctx in job.each(list(zip(ok, contexts))):
            with progress_bar(desc=f"  {r.image_id} forwards", unit="fwd", inner=True,
                              enabled=not args.no_progress) as fwd:  # inner bar only on a terminal
                for mode in ("wl", "cl"):
                    labels = [None] if mode == "wl" else [r.labels]
                    results[mode] += localize_batch([ctx], classifier, labels, config, progress=fwd)
    elapsed = time.time() - t0
    fig, axes = plt.subplots(2, len(ok), figsize=(4 * len(ok), 8.5), squeeze=False)
    for j, (r, im, ctx) in enumerate(zip(ok, images, contexts)):
        for row, mode in enumerate(("wl", "cl")):
            w = results[mode][j]
            ious = iou_matrix(w.boxes[:1], r.boxes)
            hit = bool(len(w) and ious.max() >= 0.5)
            name = "STL-WL" if mode == "wl" else "STL-CL"
            title = f"{r.image_id} {name}: top-1 IoU {ious.max() if len(w) else 0:.2f}"
            draw_windows(im, w.boxes, w.scores, out / f"{r.image_id}_{mode}.png", title=title, gt_boxes=r.boxes,
                         top=args.top)
            draw_windows(im, w.boxes, w.scores, None, title=title, gt_boxes=r.boxes, top=args.top,
                         ax=axes[row, j])
            summary.append({"image": r.image_id, "method": name, "top1_box": w.boxes[0].tolist() if len(w) else None,
                            "top1_drop": float(w.scores[0]) if len(w) else None,
                            "top1_iou": float(ious.max()) if len(w) else 0.0, "top1_hit": hit,
                            "num_windows": len(w)})
            write_json_atomic(out / f"{r.image_id}_{mode}.json", w.to_dict(classifier.classes))
    fig.suptitle("STL top windows (1 = highest drop); dashed white: ground truth", fontsize=11)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "overview.png") as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    write_json_atomic(out / "summary.json", {"model": classifier.name, "seconds": elapsed,
                                             "forwards": sum(c.num_forwards for c in contexts),
                                             "results": summary})
    print(f"\nSTL demo: {len(ok)} images, {sum(c.num_forwards for c in contexts)} forward passes, "
          f"{elapsed:.0f} s ({classifier.name}, {classifier.device})")
    print(f"{'image':<12} {'method':<7} {'top-1 IoU':>9}  hit")
    for s in summary:
        print(f"{s['image']:<12} {s['method']:<7} {s['top1_iou']:9.2f}  {'yes' if s['top1_hit'] else 'no'}")
    print(f"\nfigures: {out}/<image>_{{wl,cl}}.png, overview: {out / 'overview.png'}, summary: {out / 'summary.json'}")
    return 0
