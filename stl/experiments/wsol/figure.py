"""The ``stl wsol`` figure: heatmaps and boxes for a few images.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, Sequence

import numpy as np

from ...io import atomic_path
from ...wsol.metrics import WSOL_SIZE, WSOLScores
from .passes import Selection, scoremap_path
from .scoring import box_to_224

log = logging.getLogger("stl.experiments.wsol")


def make_figure(sel: Selection, out: Path, ids: Sequence[str], scores: Dict[str, WSOLScores],
                proposals: Dict[str, Dict[str, tuple]], model: str) -> Path:
    """Heatmaps + boxes for a few images: one row per image; columns: the image with the box
    methods' first windows, then each heatmap method with its MaxBoxAcc-threshold box."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from ...wsol.metrics import boxes_at_thresholds

    heat = [m for m in ("CAM", "GRAD-CAM", "RISE", "STL-CL-HEAT", "STL-WL-HEAT") if m in scores and len(scores[m])]
    boxm = [m for m in ("STL-WL", "STL+-WL", "STL-CL", "STL+-CL", "CENTER") if m in proposals]
    colors = {"STL-WL": "red", "STL+-WL": "yellow", "STL-CL": "magenta", "STL+-CL": "orange", "CENTER": "cyan"}
    ncol = 1 + len(heat)
    fig, axes = plt.subplots(len(ids), ncol, figsize=(2.4 * ncol, 2.4 * len(ids)), squeeze=False)

    def rect(ax, b, color, lw=1.5, ls="-"):
        ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0] + 1, b[3] - b[1] + 1, fill=False, ec=color, lw=lw, ls=ls))

    for r, i in enumerate(ids):
        info = sel.infos[i]
        rec = sel.dataset.record(i)
        img = cv2.resize(rec.read(), (WSOL_SIZE, WSOL_SIZE), interpolation=cv2.INTER_AREA)
        ax = axes[r, 0]
        ax.imshow(img)
        for g in info.gt224:
            rect(ax, g, "lime", 2)
        for m in boxm:
            if i in proposals[m] and len(proposals[m][i][0]):
                rect(ax, box_to_224(proposals[m][i][0][0], rec.size), colors[m], 1.5, "--" if "+" in m else "-")
        if r == 0:
            ax.set_title("GT (green); " + ", ".join(f"{m}" for m in boxm), fontsize=6)
        ax.set_ylabel(info.name.split("/")[-1].replace(".JPEG", ""), fontsize=6)
        for c, m in enumerate(heat, start=1):
            ax = axes[r, c]
            p = scoremap_path(out, m, info.name)
            ax.imshow(img)
            if p.exists():
                s = np.load(p)
                ax.imshow(s, cmap="jet", alpha=0.5, vmin=0, vmax=1)
                tau = scores[m].best_threshold()
                b = boxes_at_thresholds(s, [tau], False)[0][0]
                rect(ax, b, "red", 1.5)
            else:
                ax.text(0.5, 0.5, "not computed", ha="center", va="center", transform=ax.transAxes, fontsize=7)
            for g in info.gt224:
                rect(ax, g, "lime", 1)
            if r == 0:
                ax.set_title(f"{m} (box at tau*={scores[m].best_threshold():.2f})", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    path = Path(out) / f"figure__{model}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
