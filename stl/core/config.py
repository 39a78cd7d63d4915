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
    Selective Search "fast" diversification set (Sec. 3.2 / authors' code).

    The segmentations are made and pooled with k as the OUTER loop and the colour space
    inner -- (k50, HSV), (k50, Lab), (k100, HSV), (k100, Lab) -- as the authors'
    ``selective_search_obfuscation_optimized.m``; this order decides ties between windows."""

    #: Colour spaces the image is converted to before segmenting.
    color_spaces: Tuple[str, ...] = ("hsv", "lab")
    #: Felzenszwalb scale parameter k; min segment size equals k.
    ks: Tuple[int, ...] = (50, 100)
    #: Gaussian smoothing before segmentation.
    sigma: float = 0.8
    #: Regions whose box is narrower OR shorter than this (pixels, on the network-input
    #: image, measured on the box of ``STLConfig.box_convention``) are dropped. Authors'
    #: ``self_taught_loc.py``: kept if xmax - xmin >= 5 with the inclusive max, i.e. a region
    #: must span >= 6 columns; with "inclusive" boxes a 5-px region is kept.
    min_box_side: int = 5

    def __post_init__(self):
        spaces = ("hsv", "lab", "rgb")
        bad = [c for c in self.color_spaces if c not in spaces]
        if not self.color_spaces or bad:
            raise ValueError(f"SegmentationConfig.color_spaces must be one or more of {', '.join(spaces)}; "
                             f"got {self.color_spaces!r}")
        if not self.ks or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in self.ks):
            raise ValueError(f"SegmentationConfig.ks must be whole numbers >= 1; got {self.ks!r}")


#: Named profiles (``STLConfig.for_profile``). "authors" reproduces the authors' public code
#: bug for bug (it produced the published numbers; the default); "corrected" is the paper's
#: text with clean conventions. Every field that differs between them says so below, and
#: docs/fidelity.md lists them with the file of the authors' repository each comes from.
PROFILES = ("authors", "corrected")


@dataclass(frozen=True)
class STLConfig:
    """Parameters of Self-Taught Localization (Sec. 3)."""

    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)

    #: Name of the profile these settings came from ("authors" or "corrected"); stored runs
    #: are keyed by it together with every other field.
    profile: str = "authors"

    #: Mask-out h_g (Eq. 1). "box": fill the region's enclosing box with the
    #: classifier's mean colour g (authors' code, default). "segment": fill
    #: only the segment's pixels (paper footnote: worse; kept for the ablation).
    mask_mode: str = "box"

    #: The mask colour g as the authors wrote it: "uint8" truncates the classifier's
    #: per-channel mean to integers, as assigning it into the authors' uint8 image does
    #: (CaffeNet: (122.68, 116.67, 104.01) -> (122, 116, 104); ``network.py`` get_mean_img +
    #: ``self_taught_loc.py``). "float": the exact mean (corrected profile).
    mask_fill: str = "uint8"

    #: Number of top classes of f(x) whose drops are summed for STL-WL (Eq. 3).
    wl_top_classes: int = 5

    #: How Eq. 1-3 combine the per-class drops. "sum_then_clamp" (authors'
    #: ``self_taught_loc.py``, topC branch): d = max(sum_c f_c(x) - f_c(h(x,b)), 0) over the
    #: top-C classes (chosen by ``np.argsort(p)[::-1]``: ties -> higher class index first).
    #: "clamp_then_sum" (the paper's text, Eq. 1 then Eq. 3): d = sum_c max(f_c(x) - f_c(h(x,b)), 0)
    #: (ties -> lower class index first). Identical for STL-CL (one class).
    drop_rule: str = "sum_then_clamp"

    #: Pixel convention of region boxes. "authors": the authors store a segment's box as
    #: (xmin, ymin, xmax, ymax) with the INCLUSIVE max pixel but slice it as exclusive
    #: (``image[ymin:ymax, xmin:xmax]``), so the mask-out rectangle, the s_app crop and the
    #: pixel counts of s_size/s_fill all miss the box's last row and column; a region is kept
    #: if xmax - xmin >= ``min_box_side`` (so >= 6 px wide); NMS runs on the boxes divided by
    #: the input size with IoU computed without "+1" (``bbox.py``), and a merged region's pixel
    #: count is recounted inside its (shortened) merged box. "inclusive": true pixel-inclusive
    #: boxes, whole pixel counts, PASCAL "+1" IoU (corrected profile).
    box_convention: str = "authors"

    #: How the image is resized to the network input before segmentation. "skimage_bilinear":
    #: ``skimage.transform.resize`` (order 1, mode "constant", no anti-aliasing) then
    #: ``img_as_ubyte``, as the authors' ``exp30.py``. "antialiased": OpenCV area
    #: interpolation when shrinking, bilinear when enlarging (corrected profile).
    input_resize: str = "skimage_bilinear"

    #: How the crop x[b] of a box becomes a network input for s_app (the classifier decides;
    #: this is the rule the built-in engines apply). "center_square": the authors'
    #: ``NetworkCaffe.evaluate`` takes the CENTRAL SQUARE of whatever it is given
    #: (``util.crop_image_center``) and resizes it with ``skimage.transform.resize`` (bilinear,
    #: no anti-aliasing, constant border), so an elongated region is described by its middle
    #: square. "warp": the whole box is warped bilinearly to the input (corrected profile).
    crop_mode: str = "center_square"

    #: Mean subtraction of Caffe models. "authors_row255": the authors' ``NetworkCaffe``
    #: subtracts ``IMAGENET_MEAN[yoff+yoff+dim, xoff:xoff+dim]`` -- row 255 of the mean image
    #: repeated down every row (a typo for ``yoff:yoff+dim``; 4.7 grey levels mean absolute
    #: difference, 14 max). "image": the centre 227x227 crop of the mean image (corrected).
    #: Applied by ``stl.cli.args.build_from_args`` when it builds a Caffe model.
    caffe_mean: str = "authors_row255"

    #: Feature for s_app (Eq. 4). "feature": the classifier's penultimate
    #: feature (CaffeNet fc7 after ReLU, as in the authors' code; default).
    #: "logits": the pre-softmax class scores (fc8, as the paper's text says).
    appearance_feature: str = "feature"

    #: Weights (w_drop, w_app, w_size, w_fill) of Eq. 4; uniform 1/4 in the paper.
    similarity_weights: Tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25)

    #: Arithmetic of Eq. 4. "authors" (``self_taught_loc.py``): s = ((w_drop s_drop + w_size s_size)
    #: + w_fill s_fill) + w_app s_app in that order; s_app of a crop whose feature is all zero is
    #: NaN (0/0) and a NaN similarity becomes 0. "paper": the terms in Eq. 4's order, an all-zero
    #: feature is an all-zero histogram (s_app = 0), NaN ranks below every pair (corrected).
    similarity_rule: str = "authors"

    #: Candidate pairs for merging: "all" pairs (authors' code, default) or
    #: only spatially "adjacent" regions (Selective Search style; option).
    merge_pairs: str = "all"

    #: Non-maximum suppression over the pooled, drop-sorted windows: a window
    #: is removed if IoU > this with a higher-scoring kept one.
    nms_iou: float = 0.5

    #: Resolution at which drops are compared when windows are ranked (0: exact floats, as
    #: the authors' stable ``list.sort``; the default in both profiles). A positive value
    #: rounds drops before the stable sort, so drops equal at that resolution keep pooled
    #: order (an option for comparing engines whose softmax differs by float noise).
    drop_resolution: float = 0.0

    #: Number of forward passes per classifier call (speed only; results do
    #: not depend on it). None: the classifier's ``preferred_batch_size``
    #: (measured by ``stl bench``: EfficientNet-Lite0 peaks at 4 on a 2-core
    #: CPU, CaffeNet at 32).
    batch_size: Optional[int] = None

    def __post_init__(self):
        choices = {"profile": PROFILES, "mask_mode": ("box", "segment"), "mask_fill": ("uint8", "float"),
                   "drop_rule": ("sum_then_clamp", "clamp_then_sum"),
                   "box_convention": ("authors", "inclusive"),
                   "input_resize": ("skimage_bilinear", "antialiased"),
                   "crop_mode": ("center_square", "warp"), "caffe_mean": ("authors_row255", "image"),
                   "appearance_feature": ("feature", "logits"), "similarity_rule": ("authors", "paper"),
                   "merge_pairs": ("all", "adjacent")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"STLConfig.{name} must be one of {', '.join(allowed)}; "
                                 f"got {getattr(self, name)!r}")
        if self.wl_top_classes < 1:
            raise ValueError(f"STLConfig.wl_top_classes must be >= 1; got {self.wl_top_classes}")

    @classmethod
    def for_profile(cls, profile: str = "authors", **changes) -> "STLConfig":
        """The settings of a named profile ("authors" or "corrected"), then ``changes``."""
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
        base = cls() if profile == "authors" else cls(**CORRECTED_CHANGES)
        return dataclasses.replace(base, **changes) if changes else base

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


#: The "corrected" profile: the paper's text and clean conventions (see each field).
CORRECTED_CHANGES = dict(profile="corrected", mask_fill="float", drop_rule="clamp_then_sum",
                         box_convention="inclusive", input_resize="antialiased", crop_mode="warp",
                         caffe_mean="image", similarity_rule="paper")


#: IoU threshold for a window to hit a ground-truth box (PASCAL criterion).
EVAL_IOU = 0.5
#: Numbers of windows N at which the Fig. 3 curves are evaluated.
EVAL_NUM_WINDOWS = tuple(list(range(1, 16)) + [20, 30, 50, 100, 200, 500, 1000, 2000, 3000, 5000])

DEFAULT = STLConfig()
