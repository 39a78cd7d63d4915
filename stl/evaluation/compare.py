"""Compare two stored runs of the same images window by window (e.g. the "authors" and
"corrected" profiles, two engines, two precisions): how many of each image's top-N
windows change."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import numpy as np

from ..core.boxes import iou_matrix


def matched_windows(boxes_a: np.ndarray, boxes_b: np.ndarray, top: int = 10, iou: float = 0.9) -> int:
    """How many of a's top-``top`` windows match a distinct window among b's top-``top`` at
    IoU >= ``iou`` (one-to-one, greedily by highest IoU; order within the top ignored)."""
    a = np.asarray(boxes_a, np.float64).reshape(-1, 4)[:top]
    b = np.asarray(boxes_b, np.float64).reshape(-1, 4)[:top]
    if not len(a) or not len(b):
        return 0
    m = iou_matrix(a, b)
    matched = 0
    while True:
        i, j = np.unravel_index(int(np.argmax(m)), m.shape)
        if m[i, j] < iou:
            return matched
        matched += 1
        m[i, :] = -1
        m[:, j] = -1


@dataclass
class RunComparison:
    path_a: Path
    path_b: Path
    top: int
    iou: float
    changed: Dict[str, int] = field(default_factory=dict)  # image id -> top windows of a not in b's top
    compared: Dict[str, int] = field(default_factory=dict)  # image id -> top windows of a compared
    only_a: List[str] = field(default_factory=list)
    only_b: List[str] = field(default_factory=list)

    @property
    def total_changed(self) -> int:
        return int(sum(self.changed.values()))

    @property
    def total_compared(self) -> int:
        return int(sum(self.compared.values()))

    def summary(self) -> str:
        n = len(self.compared)
        share = self.total_changed / max(self.total_compared, 1)
        same = sum(1 for i in self.compared if self.changed[i] == 0)
        return (f"{n} images in both runs: {self.total_changed} of {self.total_compared} top-{self.top} windows "
                f"change ({100 * share:.1f}%; a window is unchanged if one of the other run's top-{self.top} "
                f"has IoU >= {self.iou}); {same} images keep all their top-{self.top} windows")


def compare_runs(path_a, path_b, top: int = 10, iou: float = 0.9) -> RunComparison:
    """Window-level difference of two stored runs on their common images."""
    from ..runner import load_run

    a, b = load_run(path_a, max_windows=top), load_run(path_b, max_windows=top)
    out = RunComparison(Path(path_a), Path(path_b), top, iou)
    for image_id in a.image_ids:
        if image_id not in b.boxes:
            out.only_a.append(image_id)
            continue
        n = min(top, len(a.boxes[image_id]))
        out.compared[image_id] = n
        out.changed[image_id] = n - matched_windows(a.boxes[image_id], b.boxes[image_id], top, iou)
    out.only_b = [i for i in b.image_ids if i not in a.boxes]
    return out
