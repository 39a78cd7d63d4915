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
import math
import numbers
import typing
from dataclasses import dataclass, field
from typing import Annotated, List, Literal, Optional, Tuple


# ----------------------------------------------------------------------------- declared checks
@dataclass(frozen=True)
class Range:
    """The closed interval a numeric field must lie in, declared beside the field
    (``nms_iou: Annotated[float, Range(0, 1)]``); ``None``: unbounded on that side (a float
    must still be finite). :func:`check_fields` applies it, the ``--set`` help prints it."""

    low: Optional[float] = None
    high: Optional[float] = None

    def __contains__(self, v) -> bool:
        return (self.low is None or v >= self.low) and (self.high is None or v <= self.high)

    def __str__(self) -> str:
        lo, hi = (None if v is None else int(v) if float(v).is_integer() else v for v in (self.low, self.high))
        if lo is not None and hi is not None:
            return f"in [{lo}, {hi}]"
        return f">= {lo}" if lo is not None else f"<= {hi}" if hi is not None else ""


@dataclass(frozen=True)
class Count:
    """The least number of items of a tuple field, declared beside it
    (``ks: Annotated[Tuple[PositiveInt, ...], Count(1)]``)."""

    low: int = 1

    def __str__(self) -> str:
        return f"(at least {self.low} value{'s' if self.low > 1 else ''})"


#: the largest whole number a field may hold (OpenCV takes C ints)
MAX_INT = 2 ** 31 - 1

#: colour spaces :func:`stl.core.segmentation.felzenszwalb` converts to ("rgb": none)
ColorSpace = Literal["hsv", "lab", "rgb"]
PositiveInt = Annotated[int, Range(1, MAX_INT)]
NonNegativeInt = Annotated[int, Range(0, MAX_INT)]
NonNegativeFloat = Annotated[float, Range(0, None)]


def describe(hint) -> str:
    """What a value of the declaration ``hint`` must be, in words (error messages, ``--set`` help)."""
    origin, targs = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        return " ".join([describe(targs[0])] + [str(m) for m in targs[1:] if isinstance(m, (Range, Count))])
    if origin is Literal:
        return "|".join(map(str, targs))
    if origin is typing.Union:
        return f"none or {describe([a for a in targs if a is not type(None)][0])}"
    if origin is tuple:
        if len(targs) == 2 and targs[1] is Ellipsis:
            return f"comma-separated values, each {describe(targs[0])}"
        return f"{len(targs)} comma-separated values, each {describe(targs[0])}"
    return {int: "a whole number", float: "a number", str: "text", bool: "true|false"}.get(hint, getattr(
        hint, "__name__", str(hint)))


def check_value(value, hint, where: str):
    """``value`` checked against the declaration ``hint``: its type, the ``Literal`` choices,
    the :class:`Range` / :class:`Count` beside it, finiteness of floats. Returns the value
    normalised (a list becomes a tuple, a NumPy number a Python one); raises ``ValueError``
    naming ``where`` (``STLConfig.segmentation.ks[0]``)."""
    origin, targs = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        value = check_value(value, targs[0], where)
        for m in targs[1:]:
            if (isinstance(m, Range) and value not in m) or (isinstance(m, Count) and len(value) < m.low):
                raise ValueError(f"{where} must be {describe(hint)}; got {value!r}")
        return value
    if origin is Literal:
        if not isinstance(value, str) or value not in targs:
            raise ValueError(f"{where} must be one of {', '.join(targs)}; got {value!r}")
        return value
    if origin is typing.Union:
        if value is None and type(None) in targs:
            return None
        return check_value(value, [a for a in targs if a is not type(None)][0], where)
    if origin is tuple:
        if isinstance(value, list):
            value = tuple(value)
        variadic = len(targs) == 2 and targs[1] is Ellipsis
        if not isinstance(value, tuple) or (not variadic and len(value) != len(targs)):
            raise ValueError(f"{where} must be {describe(hint)}; got {value!r}")
        kinds = [targs[0]] * len(value) if variadic else targs
        return tuple(check_value(v, t, f"{where}[{i}]") for i, (v, t) in enumerate(zip(value, kinds)))
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{where} must be a whole number; got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
            raise ValueError(f"{where} must be a finite number; got {value!r}")
        return float(value)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            raise ValueError(f"{where} must be a {hint.__name__}; got {value!r}")
        return value
    if isinstance(hint, type) and not isinstance(value, hint):
        raise ValueError(f"{where} must be {describe(hint)}; got {value!r}")
    return value


def check_fields(obj, prefix: str) -> None:
    """Check and normalise every field of the frozen dataclass ``obj`` against its declaration:
    the ONE validation of the settings (``__post_init__`` of :class:`STLConfig` and
    :class:`SegmentationConfig`), so the Python API, ``.replace``, ``--set`` and stored configs
    (:meth:`STLConfig.from_dict`) are checked alike."""
    hints = typing.get_type_hints(type(obj), include_extras=True)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        checked = check_value(value, hints[f.name], f"{prefix}.{f.name}")
        if checked is not value:
            object.__setattr__(obj, f.name, checked)


def field_help(cls) -> List[Tuple[str, str]]:
    """``[(dotted key, what its value must be)]`` of every field of ``cls``, nested dataclasses
    expanded, derived from the declarations (the ``--set`` help)."""
    out = []
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            out += [(f"{f.name}.{k}", d) for k, d in field_help(hint)]
        else:
            out.append((f.name, describe(hint)))
    return out


@dataclass(frozen=True)
class SegmentationConfig:
    """Initial regions: Felzenszwalb & Huttenlocher graph segmentation, the
    Selective Search "fast" diversification set (Sec. 3.2 / authors' code).

    The segmentations are made and pooled with k as the OUTER loop and the colour space
    inner -- (k50, HSV), (k50, Lab), (k100, HSV), (k100, Lab) -- as the authors'
    ``selective_search_obfuscation_optimized.m``; this order decides ties between windows."""

    #: Colour spaces the image is converted to before segmenting.
    color_spaces: Annotated[Tuple[ColorSpace, ...], Count(1)] = ("hsv", "lab")
    #: Felzenszwalb scale parameter k; min segment size equals k.
    ks: Annotated[Tuple[PositiveInt, ...], Count(1)] = (50, 100)
    #: Gaussian smoothing before segmentation.
    sigma: NonNegativeFloat = 0.8
    #: Regions whose box is narrower OR shorter than this (pixels, on the network-input
    #: image, measured on the box of ``STLConfig.box_convention``) are dropped. Authors'
    #: ``self_taught_loc.py``: kept if xmax - xmin >= 5 with the inclusive max, i.e. a region
    #: must span >= 6 columns; with "inclusive" boxes a 5-px region is kept.
    min_box_side: NonNegativeInt = 5

    def __post_init__(self):
        check_fields(self, "SegmentationConfig")


#: Named profiles (``STLConfig.for_profile``). "authors" reproduces the authors' public code
#: bug for bug (it produced the published numbers; the default); "corrected" is the paper's
#: text with clean conventions. Every field that differs between them says so below, and
#: docs/fidelity.md lists them with the file of the authors' repository each comes from.
Profile = Literal["authors", "corrected"]
PROFILES = typing.get_args(Profile)


@dataclass(frozen=True)
class STLConfig:
    """Parameters of Self-Taught Localization (Sec. 3)."""

    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)

    #: Name of the profile these settings came from ("authors" or "corrected"); stored runs
    #: are keyed by it together with every other field.
    profile: Profile = "authors"

    #: Mask-out h_g (Eq. 1). "box": fill the region's enclosing box with the
    #: classifier's mean colour g (authors' code, default). "segment": fill
    #: only the segment's pixels (paper footnote: worse; kept for the ablation).
    mask_mode: Literal["box", "segment"] = "box"

    #: The mask colour g as the authors wrote it: "uint8" truncates the classifier's
    #: per-channel mean to integers, as assigning it into the authors' uint8 image does
    #: (CaffeNet: (122.68, 116.67, 104.01) -> (122, 116, 104); ``network.py`` get_mean_img +
    #: ``self_taught_loc.py``). "float": the exact mean (corrected profile).
    mask_fill: Literal["uint8", "float"] = "uint8"

    #: Number of top classes of f(x) whose drops are summed for STL-WL (Eq. 3).
    wl_top_classes: PositiveInt = 5

    #: How Eq. 1-3 combine the per-class drops. "sum_then_clamp" (authors'
    #: ``self_taught_loc.py``, topC branch): d = max(sum_c f_c(x) - f_c(h(x,b)), 0) over the
    #: top-C classes (chosen by ``np.argsort(p)[::-1]``: ties -> higher class index first).
    #: "clamp_then_sum" (the paper's text, Eq. 1 then Eq. 3): d = sum_c max(f_c(x) - f_c(h(x,b)), 0)
    #: (ties -> lower class index first). Identical for STL-CL (one class).
    drop_rule: Literal["sum_then_clamp", "clamp_then_sum"] = "sum_then_clamp"

    #: Pixel convention of region boxes. "authors": the authors store a segment's box as
    #: (xmin, ymin, xmax, ymax) with the INCLUSIVE max pixel but slice it as exclusive
    #: (``image[ymin:ymax, xmin:xmax]``), so the mask-out rectangle, the s_app crop and the
    #: pixel counts of s_size/s_fill all miss the box's last row and column; a region is kept
    #: if xmax - xmin >= ``min_box_side`` (so >= 6 px wide); NMS runs on the boxes divided by
    #: the input size with IoU computed without "+1" (``bbox.py``), and a merged region's pixel
    #: count is recounted inside its (shortened) merged box. "inclusive": true pixel-inclusive
    #: boxes, whole pixel counts, PASCAL "+1" IoU (corrected profile).
    box_convention: Literal["authors", "inclusive"] = "authors"

    #: How the image is resized to the network input before segmentation. "skimage_bilinear":
    #: ``skimage.transform.resize`` (order 1, mode "constant", no anti-aliasing) then
    #: ``img_as_ubyte``, as the authors' ``exp30.py``. "antialiased": OpenCV area
    #: interpolation when shrinking, bilinear when enlarging (corrected profile).
    input_resize: Literal["skimage_bilinear", "antialiased"] = "skimage_bilinear"

    #: How the crop x[b] of a box becomes a network input for s_app (the classifier decides;
    #: this is the rule the built-in engines apply). "center_square": the authors'
    #: ``NetworkCaffe.evaluate`` takes the CENTRAL SQUARE of whatever it is given
    #: (``util.crop_image_center``) and resizes it with ``skimage.transform.resize`` (bilinear,
    #: no anti-aliasing, constant border), so an elongated region is described by its middle
    #: square. "warp": the whole box is warped bilinearly to the input (corrected profile).
    crop_mode: Literal["center_square", "warp"] = "center_square"

    #: Mean subtraction of Caffe models. "authors_row255": the authors' ``NetworkCaffe``
    #: subtracts ``IMAGENET_MEAN[yoff+yoff+dim, xoff:xoff+dim]`` -- row 255 of the mean image
    #: repeated down every row (a typo for ``yoff:yoff+dim``; 4.7 grey levels mean absolute
    #: difference, 14 max). "image": the centre 227x227 crop of the mean image (corrected).
    #: Applied by ``stl.cli.args.build_from_args`` when it builds a Caffe model.
    caffe_mean: Literal["authors_row255", "image"] = "authors_row255"

    #: Feature for s_app (Eq. 4). "feature": the classifier's penultimate
    #: feature (CaffeNet fc7 after ReLU, as in the authors' code; default).
    #: "logits": the pre-softmax class scores (fc8, as the paper's text says).
    appearance_feature: Literal["feature", "logits"] = "feature"

    #: Weights (w_drop, w_app, w_size, w_fill) of Eq. 4; uniform 1/4 in the paper.
    similarity_weights: Tuple[NonNegativeFloat, NonNegativeFloat, NonNegativeFloat, NonNegativeFloat] = (
        0.25, 0.25, 0.25, 0.25)

    #: Arithmetic of Eq. 4. "authors" (``self_taught_loc.py``): s = ((w_drop s_drop + w_size s_size)
    #: + w_fill s_fill) + w_app s_app in that order; s_app of a crop whose feature is all zero is
    #: NaN (0/0) and a NaN similarity becomes 0. "paper": the terms in Eq. 4's order, an all-zero
    #: feature is an all-zero histogram (s_app = 0), NaN ranks below every pair (corrected).
    similarity_rule: Literal["authors", "paper"] = "authors"

    #: Candidate pairs for merging: "all" pairs (authors' code, default) or
    #: only spatially "adjacent" regions (Selective Search style; option).
    merge_pairs: Literal["all", "adjacent"] = "all"

    #: Non-maximum suppression over the pooled, drop-sorted windows: a window
    #: is removed if IoU > this with a higher-scoring kept one.
    nms_iou: Annotated[float, Range(0, 1)] = 0.5

    #: Resolution at which drops are compared when windows are ranked (0: exact floats, as
    #: the authors' stable ``list.sort``; the default in both profiles). A positive value
    #: rounds drops before the stable sort, so drops equal at that resolution keep pooled
    #: order (an option for comparing engines whose softmax differs by float noise).
    drop_resolution: NonNegativeFloat = 0.0

    #: Number of forward passes per classifier call (speed only; results do
    #: not depend on it). None: the classifier's ``preferred_batch_size``
    #: (measured by ``stl bench``: EfficientNet-Lite0 peaks at 4 on a 2-core
    #: CPU, CaffeNet at 32).
    batch_size: Optional[PositiveInt] = None

    def __post_init__(self):
        check_fields(self, "STLConfig")

    @classmethod
    def for_profile(cls, profile: str = "authors", **changes) -> "STLConfig":
        """The settings of a named profile ("authors" or "corrected"), then ``changes``."""
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
        base = cls() if profile == "authors" else cls(**CORRECTED_CHANGES)
        return dataclasses.replace(base, **changes) if changes else base

    @classmethod
    def from_dict(cls, d: dict) -> "STLConfig":
        """The config of a stored ``to_dict()`` / ``identity()`` (a run file's ``method_config``,
        a JSON file), checked like any other: an unknown key or a bad value raises ``ValueError``;
        a missing key takes its profile's value."""
        if not isinstance(d, dict):
            raise ValueError(f"a stored STLConfig must be an object, not {d!r}")
        d = dict(d)
        seg = d.pop("segmentation", None)
        if seg is not None and not isinstance(seg, dict):
            raise ValueError(f"STLConfig.segmentation must be an object, not {seg!r}")
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)}) + sorted(
            f"segmentation.{k}" for k in set(seg or {}) - {f.name for f in dataclasses.fields(SegmentationConfig)})
        if unknown:
            raise ValueError(f"unknown STLConfig field(s) {', '.join(unknown)}")
        base = cls.for_profile(d.pop("profile", "authors"))
        if seg is not None:
            d["segmentation"] = dataclasses.replace(base.segmentation, **seg)
        return dataclasses.replace(base, **d)

    def replace(self, **changes) -> "STLConfig":
        return dataclasses.replace(self, **changes)

    def check_classes(self, num_classes: int) -> None:
        """Refuse settings a classifier of ``num_classes`` classes cannot honour (the one check that
        needs the classifier): ``wl_top_classes`` larger than the number of classes. Raises
        ``ValueError`` (callers that face the user make it :class:`stl.errors.OptionError`)."""
        if self.wl_top_classes > num_classes:
            raise ValueError(f"wl_top_classes={self.wl_top_classes} is more than the classifier's "
                             f"{num_classes} classes")

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
#: Per-image bootstrap of the evaluation figures (``stl eval --ci``, stl.evaluation.bootstrap):
#: resamples and the seed of ``numpy.random.default_rng`` (ours; the paper reports no intervals).
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0

DEFAULT = STLConfig()


@dataclass(frozen=True)
class SelectiveSearchConfig:
    """Selective Search "fast" (Uijlings et al., IJCV 2013) as the authors ran it for the
    paper's SELSEARCH curve: the SelectiveSearchCodeIJCV release called by their
    ``selective_search.m`` with ``ss_version = 'fast'`` (docs/selective_search.md).

    Defaults are the release's fast mode; every departure from its MATLAB code is listed in
    docs/selective_search.md."""

    #: Colour spaces (``Image2ColourSpace``: 8-bit HSV and Lab), inner loop.
    color_spaces: Tuple[str, ...] = ("hsv", "lab")
    #: Felzenszwalb k (min segment size = k), outer loop.
    ks: Tuple[int, ...] = (50, 100)
    #: Gaussian smoothing of the Felzenszwalb segmentation.
    sigma: float = 0.8
    #: Similarity combinations of the fast mode, one hierarchy each:
    #: ``SSSimColourTextureSizeFillOrig`` and ``SSSimTextureSizeFill``.
    strategies: Tuple[str, ...] = ("colour+texture+size+fill", "texture+size+fill")
    #: Bins per colour channel of the colour histogram (IJCV Sec. 3.2: 25, 75-d for 3 channels).
    colour_bins: int = 25
    #: Orientations of the Gaussian derivatives of the texture histogram (IJCV: 8).
    texture_orientations: int = 8
    #: Bins per orientation and channel of the texture histogram (IJCV: 10, 240-d in all).
    texture_bins: int = 10
    #: Scale of the Gaussian derivatives (IJCV: sigma = 1).
    texture_sigma: float = 1.0
    #: Boxes narrower or shorter than this many pixels are dropped (``minBoxWidth = 20`` of
    #: the authors' ``selective_search.m``; 0 keeps all).
    min_box_width: int = 20
    #: Ranking. "pseudo_random" (the release): priority = position in its hierarchy (1 = the
    #: last merge) x U(0, 1), ascending. "hierarchy": the positions alone (no random factor).
    ranking: str = "pseudo_random"
    #: Seed of the random factor: the authors call ``rng('default')`` before every image,
    #: i.e. MATLAB's Mersenne Twister with seed 5489, whose ``rand`` stream is numpy's
    #: ``RandomState(5489).random_sample``.
    seed: int = 5489

    def __post_init__(self):
        known = ("colour+texture+size+fill", "texture+size+fill")
        bad = [s for s in self.strategies if s not in known]
        if bad or not self.strategies:
            raise ValueError(f"SelectiveSearchConfig.strategies must be among {', '.join(known)}; got {bad}")
        if self.ranking not in ("pseudo_random", "hierarchy"):
            raise ValueError(f"SelectiveSearchConfig.ranking must be pseudo_random or hierarchy; got {self.ranking!r}")
        if not self.ks or any(int(k) <= 0 for k in self.ks):
            raise ValueError(f"SelectiveSearchConfig.ks must be positive; got {self.ks}")

    def to_dict(self) -> dict:
        """Every field (stored runs record it as their ``method_config``)."""
        return dataclasses.asdict(self)
