"""A tiny synthetic ILSVRC-val dataset in the WSOL layout (flat-colour objects on a flat
background): Felzenszwalb finds a handful of regions, so STL runs in seconds. Used by the
experiment tests to exercise the real code paths quickly; real-data runs are marked slow."""
from __future__ import annotations

from pathlib import Path

import numpy as np

#: (wnid index in synset order, object box x0, y0, x1, y1 on a 227x227 image, colour)
IMAGES = [
    (281, (60, 50, 170, 180), (200, 120, 40)),   # n02123045 tabby cat
    (954, (30, 90, 120, 200), (240, 220, 30)),   # banana
]


def write_synthetic_ilsvrc(root: Path, classify=None) -> Path:
    """Write the images and WSOL metadata under ``root``. ``classify(image_u8) -> class index``
    (e.g. a classifier's top-1) replaces the listed labels, so that the "true" class is one the
    classifier predicts (Fig. 1 / Fig. 5 select on that)."""
    import cv2

    root = Path(root)
    (root / "val").mkdir(parents=True, exist_ok=True)
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    ids, labels, locs, sizes = [], [], [], []
    for k, (label, box, color) in enumerate(IMAGES):
        name = f"val/ILSVRC2012_val_{k + 1:08d}.png"
        img = np.full((227, 227, 3), (70, 110, 160), np.uint8)
        x0, y0, x1, y1 = box
        img[y0:y1 + 1, x0:x1 + 1] = color
        img[y0 + 20:y0 + 40, x0 + 20:x0 + 50] = (30, 30, 30)  # a dark patch inside the object
        cv2.imwrite(str(root / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        if classify is not None:
            label = int(classify(img))
        ids.append(name)
        labels.append(f"{name},{label}")
        locs.append(f"{name},{x0},{y0},{x1},{y1}")
        sizes.append(f"{name},227,227")
    for fname, lines in (("image_ids.txt", ids), ("class_labels.txt", labels), ("localization.txt", locs),
                         ("image_sizes.txt", sizes)):
        (root / "metadata" / fname).write_text("\n".join(lines) + "\n")
    return root
