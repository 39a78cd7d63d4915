"""Supplementary Table 1: a gallery of top-1 boxes of STL-CL and SELSEARCH beside the ground truth.

Row blocks of N images; in each block three rows: the ground-truth boxes, the top-1 STL-CL
window, the top-1 SELSEARCH window (with its IoU against the best-matching ground-truth box).
Windows come from the stored runs (``<runs>/<dataset>/STL-CL__<model>.h5`` and
``SELSEARCH.h5``, shared with ``stl run`` / ``stl eval`` / ``stl fig1``). Images: the first
``--limit`` of the dataset, in its order (no selection).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

import numpy as np

from .common import class_words, csv_text, markdown_table, save_figure, stored_run, wrap, write_text

ROWS = (("ground truth", None, "white"), ("STL-CL top-1", "STL-CL", "red"), ("SELSEARCH top-1", "SELSEARCH", "lime"))


def gallery_rows(dataset, runs: dict) -> List[dict]:
    """Per image: the top-1 box of each method and its best IoU with the ground truth."""
    from ..core.boxes import iou_matrix

    common = [i for i in dataset.image_ids if all(i in r.boxes and len(r.boxes[i]) for r in runs.values())]
    rows = []
    for image_id in common:
        rec = dataset.record(image_id)
        row = {"image": image_id, "class": ", ".join(class_words(l) for l in rec.labels), "gt_boxes": len(rec.boxes)}
        for name, run in runs.items():
            box = run.boxes[image_id][0].astype(np.float64)
            iou = float(iou_matrix(box[None], rec.boxes).max()) if len(rec.boxes) else 0.0
            row[f"{name}_box"] = [round(float(v), 1) for v in box]
            row[f"{name}_iou"] = iou
            row[f"{name}_hit"] = iou >= 0.5
        rows.append(row)
    return rows


def plot_gallery(dataset, runs: dict, rows: Sequence[dict], per_row: int = 5, caption: str = ""):
    from matplotlib.figure import Figure
    import matplotlib.patches as patches

    blocks = [rows[i:i + per_row] for i in range(0, len(rows), per_row)] or [[]]
    nr = 3 * len(blocks)
    nc = max(1, min(per_row, len(rows)))
    width = max(2.1 * nc + 0.9, 6.0)
    text = wrap(caption, int(width * 15)) if caption else ""
    head = 0.35 + 0.14 * (text.count("\n") + 1) if text else 0.3
    fig = Figure(figsize=(width, 2.05 * nr + head + 0.2))
    axes = fig.subplots(nr, nc, squeeze=False)
    for b, block in enumerate(blocks):
        for j in range(nc):
            for k, (label, method, color) in enumerate(ROWS):
                ax = axes[3 * b + k, j]
                ax.set_xticks([])
                ax.set_yticks([])
                if j >= len(block):
                    ax.set_axis_off()
                    continue
                row = block[j]
                rec = dataset.record(row["image"])
                ax.imshow(rec.read())
                boxes = rec.boxes if method is None else np.asarray(row[f"{method}_box"])[None]
                for x0, y0, x1, y1 in boxes:
                    ax.add_patch(patches.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False,
                                                   ec=color, lw=2, ls="--" if method is None else "-"))
                if method is None:
                    ax.set_title(f"{row['image'][-8:]}: {row['class'][:18]}", fontsize=6.5)
                else:
                    ax.set_title(f"IoU {row[f'{method}_iou']:.2f}" + (" (hit)" if row[f"{method}_hit"] else ""),
                                 fontsize=6.5, color="darkgreen" if row[f"{method}_hit"] else "black")
                if j == 0:
                    ax.set_ylabel(label, fontsize=7)
    if text:
        fig.text(0.5, 1 - 0.08 / fig.get_figheight(), text, fontsize=6.5, ha="center", va="top")
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.01, top=1 - (head + 0.05) / fig.get_figheight(),
                        hspace=0.25, wspace=0.05)
    return fig


def run_gallery(data, model: str, get_classifier, out, runs_dir, per_row: int = 5, progress: bool = True,
                config=None) -> dict:
    """Supplementary Table 1 on ``data``: the top-1 boxes of the stored STL-CL run (made with
    ``config``, an STLConfig; default: the authors' profile) and SELSEARCH beside the ground truth."""
    out = Path(out)
    runs, paths = {}, {}
    for m in ("STL-CL", "SELSEARCH"):
        runs[m], paths[m] = stored_run(data.dataset, m, model, get_classifier, runs_dir, config=config,
                                       progress=progress)
    rows = gallery_rows(data.dataset, runs)
    hits = {m: sum(r[f"{m}_hit"] for r in rows) for m in runs}
    caption = (f"Supplementary Table 1 -- top-1 boxes of STL-CL (model {model}) and SELSEARCH (Selective Search "
               f"fast, the release's algorithm and ranking) beside the ground truth (dashed), {len(rows)} images "
               f"({data.description}; the first images of the dataset, no selection). Top-1 hits (IoU >= 0.5): "
               f"STL-CL {hits['STL-CL']}/{len(rows)}, SELSEARCH "
               f"{hits['SELSEARCH']}/{len(rows)}.")
    files = save_figure(plot_gallery(data.dataset, runs, rows, per_row, caption), out, "gallery")
    cols = ["image", "class", "gt_boxes", "STL-CL_box", "STL-CL_iou", "STL-CL_hit", "SELSEARCH_box", "SELSEARCH_iou",
            "SELSEARCH_hit"]
    files.append(write_text(out / "gallery.csv", csv_text(rows, cols)))
    md = ("# Supplementary Table 1: top-1 boxes\n\n" + caption + "\n\n"
          + "Runs: " + ", ".join(f"`{p}`" for p in paths.values()) + "\n\n"
          + markdown_table(rows, cols, ["image", "class", "GT boxes", "STL-CL top-1", "IoU", "hit", "SELSEARCH top-1",
                                        "IoU", "hit"], {"STL-CL_iou": ".2f", "SELSEARCH_iou": ".2f"}))
    files.append(write_text(out / "gallery.md", md))
    return {"rows": rows, "files": files, "hits": hits}
