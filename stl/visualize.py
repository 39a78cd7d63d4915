"""Pictures: an image with its top windows and their drop scores."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from .io import atomic_path

#: the image is shown at most this many pixels on its longer side (figures are at most 6 inches at 100 dpi)
MAX_DRAW_SIDE = 1200


def draw_windows(image: np.ndarray, boxes: np.ndarray, scores: np.ndarray, path, title: str = "",
                 gt_boxes: Optional[np.ndarray] = None, top: int = 5, ax=None):
    """Save ``image`` with the first ``top`` windows (numbered, with their drop)
    and, dashed white, the ground-truth boxes. Returns the matplotlib figure. The figure's size is
    bounded (at most 6x6.4 inches, at least 1.5) and large images are shown subsampled, so any image
    size draws in bounded memory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    own = ax is None
    h, w = image.shape[:2]
    if own:  # bounded size whatever the image's (a 1x5000 image must not ask for a 30000-inch figure)
        side = max(h, w, 1)
        fig, ax = plt.subplots(figsize=(max(1.5, 6 * w / side), max(1.5, 6 * h / side) + 0.4))
    else:
        fig = ax.figure
    step = max(1, -(-max(h, w) // MAX_DRAW_SIDE))
    shown = image[::step, ::step] if step > 1 else image  # boxes keep the full image's coordinates (extent)
    ax.imshow(shown, extent=(-0.5, w - 0.5, h - 0.5, -0.5), interpolation="nearest" if step == 1 else "antialiased")
    ax.set_axis_off()
    cmap = plt.get_cmap("autumn")
    n = min(top, len(boxes))
    if gt_boxes is not None:
        for b in np.asarray(gt_boxes).reshape(-1, 4):
            ax.add_patch(plt.Rectangle((b[0], b[1]), b[2] - b[0] + 1, b[3] - b[1] + 1, fill=False, ec="white",
                                       ls="--", lw=2))
    for i in range(n - 1, -1, -1):
        b = boxes[i]
        color = cmap(i / max(n - 1, 1))
        ax.add_patch(plt.Rectangle((b[0], b[1]), b[2] - b[0] + 1, b[3] - b[1] + 1, fill=False, ec=color,
                                   lw=3 if i == 0 else 1.5))
        ax.text(b[0] + 2, b[1] + 2, f"{i + 1}: {scores[i]:.2f}", color="black", fontsize=8, va="top",
                bbox=dict(facecolor=color, alpha=0.8, pad=1, lw=0))
    if title:
        ax.set_title(title, fontsize=9)
    if own and path is not None:
        path = Path(path)
        with warnings.catch_warnings():  # "tight layout not applied" for extreme aspect ratios: harmless
            warnings.simplefilter("ignore", UserWarning)
            fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=100)
        plt.close(fig)
    return fig
