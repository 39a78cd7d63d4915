"""The one configuration of the STL method.

Every parameter of the method is named here ONCE with the paper's value as its
default. Where the paper's text and the authors' public code
(lorisbaz/self-taught_localization) disagree, the default follows the code that
produced the published numbers and the other reading is an option; both are
documented on the field.

References are to Bazzani, Bergamo, Anguelov, Torresani, "Self-taught object
localization with deep networks", WACV 2016 (arXiv:1409.3964).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional, Tuple


@dataclass(frozen=True)
class SegmentationConfig:
    """Initial regions: Felzenszwalb & Huttenlocher graph segmentation, the
    Selective Search "fast" diversification set (Sec. 3.2 / authors' code)."""

    #: Colour spaces the image is converted to before segmenting.
    color_spaces: Tuple[str, ...] = ("hsv", "lab")
    #: Felzenszwalb scale parameter k; min segment size equals k.
    ks: Tuple[int, ...] = (50, 100)
    #: Gaussian smoothing before segmentation.
    sigma: float = 0.8
    #: Regions whose enclosing box is narrower OR shorter than this (pixels, on
    #: the network-input image) are dropped (authors' code).
    min_box_side: int = 5


@dataclass(frozen=True)
class STLConfig:
    """Parameters of Self-Taught Localization (Sec. 3)."""

    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)

    #: Mask-out h_g (Eq. 1). "box": fill the region's enclosing box with the
    #: classifier's mean colour g (authors' code, default). "segment": fill
    #: only the segment's pixels (paper footnote: worse; kept for the ablation).
    mask_mode: str = "box"

    #: Number of top classes of f(x) whose drops are summed for STL-WL (Eq. 3).
    wl_top_classes: int = 5

    #: Feature for s_app (Eq. 4). "feature": the classifier's penultimate
    #: feature (CaffeNet fc7 after ReLU, as in the authors' code; default).
    #: "logits": the pre-softmax class scores (fc8, as the paper's text says).
    appearance_feature: str = "feature"

    #: Weights (w_drop, w_app, w_size, w_fill) of Eq. 4; uniform 1/4 in the paper.
    similarity_weights: Tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25)

    #: Candidate pairs for merging: "all" pairs (authors' code, default) or
    #: only spatially "adjacent" regions (Selective Search style; option).
    merge_pairs: str = "all"

    #: Non-maximum suppression over the pooled, drop-sorted windows: a window
    #: is removed if IoU > this with a higher-scoring one.
    nms_iou: float = 0.5

    #: Resolution at which drops are compared when windows are ranked: drops
    #: equal at this resolution keep their deterministic order (initial regions
    #: before merges, segmentation order). Softmax outputs of two faithful
    #: engines (pycaffe vs PyTorch) differ by ~1e-6, and saturated drops of
    #: large windows (masking nearly the whole object) differ by less than
    #: that, so ranking at full float precision would let float noise reorder
    #: them. The stored scores keep full precision.
    drop_resolution: float = 1e-4

    #: Number of forward passes per classifier call (speed only; results do
    #: not depend on it). None: the classifier's ``preferred_batch_size``
    #: (measured by ``stl bench``: EfficientNet-Lite0 peaks at 4 on a 2-core
    #: CPU, CaffeNet at 32).
    batch_size: Optional[int] = None

    def replace(self, **changes) -> "STLConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def identity(self) -> dict:
        """The fields that change results (``to_dict`` without speed-only settings);
        stored runs are keyed by it, so a rerun with another batch size resumes."""
        d = self.to_dict()
        d.pop("batch_size", None)
        return d


#: IoU threshold for a window to hit a ground-truth box (PASCAL criterion).
EVAL_IOU = 0.5
#: Numbers of windows N at which the Fig. 3 curves are evaluated.
EVAL_NUM_WINDOWS = tuple(list(range(1, 16)) + [20, 30, 50, 100, 200, 500, 1000, 2000, 3000, 5000])

DEFAULT = STLConfig()
