"""Class-specific heatmaps from one classifier: CAM, Grad-CAM, RISE, and STL's windows.

All four give, for an image and a class c, a map over the image; :func:`to_scoremap`
turns it into the WSOL benchmark's score map (``WSOL_SIZE`` x ``WSOL_SIZE`` float64 in
[0, 1], :mod:`stl.wsol.metrics`): resized with bicubic interpolation, then min-max
normalised (a constant map becomes all zeros), as wsolevaluation's ``inference.py`` does.

* **CAM** (Zhou et al., CVPR 2016): for a net that ends in a last conv feature map
  f (K x h x w) -> global average pooling -> linear classifier W (C x K),
  ``CAM_c = sum_k W[c, k] f_k`` (no bias). Applies to EfficientNet-Lite0 (1280 x 7 x 7
  head -> GAP -> ``_fc``) and to SqueezeNet v1.0, whose classifier IS a conv layer
  (``conv_final``, 1000 channels) + ReLU + global average pooling: its features are
  ``relu(conv_final)`` and the linear head the identity, so ``CAM_c`` is channel c of
  ``relu(conv_final)``. It does NOT apply to CaffeNet / AlexNet (pool5 -> fc6 -> fc7 ->
  fc8: no global pooling before a linear head); :class:`ConvHead` says so.
* **Grad-CAM** (Selvaraju et al., ICCV 2017): any net with a last conv feature map;
  ``alpha_k = mean_ij d y_c / d f_k(i, j)`` (y_c the pre-softmax score),
  ``GradCAM_c = relu(sum_k alpha_k f_k)``. For a GAP + linear head,
  ``alpha_k = W[c, k] / (h w)``, so ``GradCAM_c = relu(CAM_c) / (h w)``.
* **RISE** (Petsiuk et al., BMVC 2018): N random binary grids (s x s, each cell kept
  with probability p), bilinearly upsampled to ``(s + 1) * ceil(H / s)``, randomly shifted
  by up to one cell and cropped to H x W; ``RISE_c = sum_i P_c(x * M_i) M_i / (N p)``. A
  masked pixel takes the classifier's mask colour g, the value STL's mask-out h_g (Eq. 1)
  uses (for Lite0 g maps to 0 after preprocessing, as in RISE's reference code), so RISE
  is the random-mask descendant of STL's masking. Forwards are batched through
  ``Classifier.__call__`` (any engine).
* **STL heatmap**: each pixel accumulates the drops (Eq. 1-3) of the windows covering it;
  see :func:`stl_heatmap` for the rule.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from .metrics import WSOL_SIZE

log = logging.getLogger(__name__)

#: RISE's defaults (Petsiuk et al. 2018, Sec. 4: N = 4000 masks of 7 x 7 cells, p = 0.5)
RISE_NUM_MASKS = 4000
RISE_GRID = 7
RISE_P = 0.5
RISE_SEED = 0
#: STL heatmap rule: "area" -- every window adds drop / area(window) to its pixels (the
#: authors' Heatmap.add_val_rect with area_normalization=True, their default)
STL_HEATMAP_RULE = "area"
STL_HEATMAP_RULES = ("area", "sum", "mean")


# ----------------------------------------------------------------------------- score maps
def normalize_map(m: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] (float64); a constant or non-finite map gives all zeros."""
    m = np.asarray(m, np.float64)
    if not np.isfinite(m).all() or m.size == 0 or m.max() == m.min():
        return np.zeros(m.shape, np.float64)
    m = m - m.min()
    return m / m.max()


def to_scoremap(heatmap: np.ndarray, size: int = WSOL_SIZE, interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """A raw heatmap (any resolution) as a WSOL score map: resized to size x size, then
    min-max normalised (float64 in [0, 1])."""
    h = np.asarray(heatmap, np.float32)
    if h.shape != (size, size):
        h = cv2.resize(h, (size, size), interpolation=interpolation)
    return normalize_map(h)


# ----------------------------------------------------------------------------- CAM / Grad-CAM
class ConvHead:
    """Access to a classifier's last conv feature map f and its pre-softmax scores y, with
    autograd, for CAM and Grad-CAM. Build with :func:`conv_head`.

    Attributes: ``feature_name`` (the map's layer), ``cam_applies`` and ``cam_note`` (why
    CAM does or does not apply), ``cam_weights`` (C x K tensor, None for the identity).
    """

    feature_name: str = ""
    cam_applies: bool = False
    cam_note: str = ""
    cam_weights = None

    def __init__(self, classifier):
        self.classifier = classifier

    def features_logits(self, images: np.ndarray):
        """(f: N x K x h x w, y: N x C) as float32 tensors on a graph (f is differentiable)."""
        raise NotImplementedError


class Lite0Head(ConvHead):
    feature_name = "head conv (1280 x 7 x 7, after BN + swish)"
    cam_applies = True
    cam_note = "EfficientNet-Lite0: head conv -> global average pooling -> linear _fc: CAM applies"

    def __init__(self, classifier):
        super().__init__(classifier)
        self.net = classifier.net
        self.cam_weights = self.net._fc.weight.detach().float()

    def features_logits(self, images):
        import torch

        from ..models.efficientnet import MEAN, STD

        rt = self.classifier.runtime
        x = rt.to_tensor((np.asarray(images, np.float32).transpose(0, 3, 1, 2) - MEAN) / STD)
        x.requires_grad_(True)  # builds the graph although the weights are frozen
        with rt.autocast():
            f = self.net.extract_features(x)
            y = self.net._fc(torch.flatten(self.net._avg_pooling(f), 1))
        return f, y.float()


class CaffeHead(ConvHead):
    """A Caffe net in the torch engine: the top of its last Convolution layer (after an in-place
    ReLU, as pycaffe's blob shows it). CAM applies iff only ReLU / Dropout / a global AVE
    pooling (/ Softmax / Flatten) lie between that map and the class scores (SqueezeNet)."""

    def __init__(self, classifier):
        super().__init__(classifier)
        from ..models.caffe.layers import ConvolutionLayer, IdentityLayer, PoolingLayer, ReLULayer

        net = classifier.net
        convs = [i for i, l in enumerate(net.layers) if isinstance(l, ConvolutionLayer)]
        if not convs:
            raise ValueError(f"{classifier.name}: no Convolution layer, no feature map for CAM / Grad-CAM")
        last = convs[-1]
        self.blob = net.layers[last].tops[0]
        self.feature_name = f"{self.blob} {tuple(net.blob_shapes[self.blob][1:])}"
        after = [l for l in net.layers[last + 1:]]
        simple = True
        for l in after:
            if isinstance(l, (ReLULayer, IdentityLayer)):
                continue
            if isinstance(l, PoolingLayer) and l.global_pooling and l.method == "AVE":
                continue
            if type(l).__name__ in ("SoftmaxLayer", "FlattenLayer"):
                continue
            simple = False
            break
        self.cam_applies = simple and net.blob_shapes[self.blob][1] == len(classifier.classes)
        if self.cam_applies:
            self.cam_note = (f"{classifier.name}: {self.blob} (one channel per class) -> ReLU -> global average "
                             f"pooling: CAM applies with the identity as linear head")
        else:
            kinds = sorted({type(l).__name__.replace('Layer', '') for l in after})
            self.cam_note = (f"{classifier.name}: {self.blob} is followed by {', '.join(kinds)}, not global "
                             f"pooling + a linear head: CAM does not apply (Grad-CAM does)")

    def features_logits(self, images):
        clf = self.classifier
        x = clf.runtime.to_tensor(clf.preprocessing(np.asarray(images)))
        x.requires_grad_(True)
        with clf.runtime.autocast():
            out = clf.net(x, (self.blob, clf.logits_blob))
        f = out[self.blob]
        y = out[clf.logits_blob].reshape(f.shape[0], -1)
        return f, y.float()


def conv_head(classifier) -> ConvHead:
    """The :class:`ConvHead` of a torch-engine classifier (EfficientNet-Lite0, Caffe nets), or of
    the PyTorch twin of an exported one (``--engine onnx``: ``classifier.gradient_twin()``, the
    same weights in PyTorch, since ONNX Runtime computes no gradients)."""
    from ..errors import OptionError
    from ..models.efficientnet import EfficientNetLite0

    twin = getattr(classifier, "gradient_twin", None)
    if twin is not None:
        head = conv_head(twin())
        head.cam_note += f" (gradients from the same weights in PyTorch; {classifier.name} is their ONNX export)"
        return head
    if isinstance(classifier, EfficientNetLite0):
        return Lite0Head(classifier)
    try:
        from ..models.caffe.classifier import TorchCaffeClassifier
    except ImportError:  # pragma: no cover
        TorchCaffeClassifier = ()
    if isinstance(classifier, TorchCaffeClassifier):
        return CaffeHead(classifier)
    raise OptionError(f"CAM / Grad-CAM need a PyTorch engine (efficientnet_lite0 or --engine torch); "
                     f"{type(classifier).__name__} gives no gradients")


def cam_maps(head: ConvHead, images: np.ndarray, classes: Sequence[Sequence[int]]) -> Dict[str, np.ndarray]:
    """CAM and Grad-CAM of several classes per image, from one forward and one backward per class slot.

    ``classes[n]`` lists the classes wanted for image n (same count for every image).
    Returns ``{"cam": (N, J, h, w) or None, "gradcam": (N, J, h, w), "logits": (N, C)}``;
    CAM is None where it does not apply.
    """
    import torch

    classes = np.asarray(classes, np.int64).reshape(len(images), -1)
    with torch.enable_grad():
        f, y = head.features_logits(images)
        grads = []
        for j in range(classes.shape[1]):
            idx = torch.as_tensor(classes[:, j], device=y.device)
            score = y.gather(1, idx[:, None]).sum()
            (g,) = torch.autograd.grad(score, f, retain_graph=j + 1 < classes.shape[1])
            grads.append(g.float())
    f = f.detach().float()
    gradcam = []
    for g in grads:
        alpha = g.mean(dim=(2, 3), keepdim=True)
        gradcam.append(torch.relu((alpha * f).sum(1)))
    out = {"gradcam": torch.stack(gradcam, 1).cpu().numpy(), "logits": y.detach().float().cpu().numpy(), "cam": None}
    if head.cam_applies:
        cams = []
        for j in range(classes.shape[1]):
            idx = torch.as_tensor(classes[:, j], device=f.device)
            if head.cam_weights is None:
                cams.append(f[torch.arange(len(idx), device=f.device), idx])
            else:
                w = head.cam_weights.to(f.device)[idx]  # (N, K)
                cams.append(torch.einsum("nk,nkhw->nhw", w, f))
        out["cam"] = torch.stack(cams, 1).cpu().numpy()
    return out


# ----------------------------------------------------------------------------- RISE
@dataclass
class RISEConfig:
    """RISE's parameters (Petsiuk et al. 2018); defaults are the paper's."""

    num_masks: int = RISE_NUM_MASKS
    grid: int = RISE_GRID
    p: float = RISE_P
    seed: int = RISE_SEED
    batch_size: Optional[int] = None  # None: the classifier's preferred batch size

    def __post_init__(self):
        from ..errors import OptionError

        if self.num_masks < 1 or self.grid < 1:
            raise OptionError(f"RISE needs at least one mask and one grid cell (num_masks={self.num_masks}, "
                              f"grid={self.grid})")
        if not 0 < self.p <= 1:  # NaN fails too
            raise OptionError(f"RISE's p must be in (0, 1], not {self.p}")
        if self.batch_size is not None and self.batch_size < 1:
            raise OptionError(f"RISE's batch size must be >= 1, not {self.batch_size}")


class RISEMasks:
    """The N masks of RISE for an H x W input, drawn once from ``seed`` (the same masks for
    every image, as in the reference implementation) and generated batch by batch."""

    def __init__(self, size: Tuple[int, int], config: RISEConfig = RISEConfig()):
        if config.num_masks < 1:
            raise ValueError("RISE needs at least one mask")
        if not 0 < config.p <= 1:
            raise ValueError("RISE's p must be in (0, 1]")
        self.size = (int(size[0]), int(size[1]))
        self.config = config
        rng = np.random.default_rng(config.seed)
        s = config.grid
        h, w = self.size
        self.cell = (int(np.ceil(h / s)), int(np.ceil(w / s)))
        self.grids = rng.random((config.num_masks, s, s)) < config.p
        self.shifts = np.stack([rng.integers(0, self.cell[0], config.num_masks),
                                rng.integers(0, self.cell[1], config.num_masks)], 1)

    def __len__(self):
        return len(self.grids)

    def masks(self, start: int, stop: int) -> np.ndarray:
        """Masks ``start..stop-1`` as float32 (n, H, W) in [0, 1]."""
        s = self.config.grid
        h, w = self.size
        up_h, up_w = (s + 1) * self.cell[0], (s + 1) * self.cell[1]
        out = np.empty((stop - start, h, w), np.float32)
        for k, i in enumerate(range(start, stop)):
            up = cv2.resize(self.grids[i].astype(np.float32), (up_w, up_h), interpolation=cv2.INTER_LINEAR)
            dy, dx = self.shifts[i]
            out[k] = up[dy:dy + h, dx:dx + w]
        return out


def rise_saliency(classifier, image: np.ndarray, masks: RISEMasks, classes: Sequence[int]
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """RISE maps of ``classes`` for one image (already at the classifier's input size).

    Returns (maps (len(classes), H, W) float64, probabilities of the unmasked image (C,)).
    """
    from ..models.base import PROB

    x = np.asarray(image, np.float32)
    if x.shape[:2] != masks.size:
        raise ValueError(f"image {x.shape[:2]} does not match the masks {masks.size}")
    g = np.asarray(classifier.mask_color, np.float32)
    classes = np.asarray(classes, np.int64)
    bs = masks.config.batch_size or max(int(getattr(classifier, "preferred_batch_size", 32)), 1)
    step = max(bs, 16)
    acc = np.zeros((len(classes),) + masks.size, np.float64)
    for start in range(0, len(masks), step):
        m = masks.masks(start, min(start + step, len(masks)))
        batch = g + m[..., None] * (x[None] - g)
        p = classifier(batch, outputs=(PROB,), batch_size=bs)[PROB][:, classes]  # (n, J)
        acc += np.einsum("nj,nhw->jhw", p.astype(np.float64), m.astype(np.float64))
    acc /= len(masks) * masks.config.p
    full = classifier(x[None], outputs=(PROB,))[PROB][0]
    return acc, full


# ----------------------------------------------------------------------------- STL
def stl_heatmap(windows, size: Optional[Tuple[int, int]] = None, rule: str = STL_HEATMAP_RULE,
                top: Optional[int] = None) -> np.ndarray:
    """STL's windows as a heatmap over the image (H x W float64).

    ``windows``: an :class:`stl.localization.Windows` (its ``boxes`` in original pixels,
    ``scores`` the drops d of Eq. 1-3) or a pair (boxes, scores); ``size`` = (H, W) (default
    the Windows' ``image_size``). Boxes are pixel-inclusive, clipped to the image. Rules:

    * ``"area"`` (default): H(p) = sum over windows b covering p of d(b) / |b| -- each window
      spreads its drop uniformly over its pixels, so the whole-image window (often the largest
      drop) adds only a constant, and small windows with a large drop stand out. This is the
      authors' heat extractor (``Heatmap.add_val_rect`` with ``area_normalization=True``).
    * ``"sum"``: H(p) = sum of d(b) over the windows covering p.
    * ``"mean"``: that sum divided by the number of windows covering p (the authors'
      ``normalize_counts``); uncovered pixels 0.

    ``top`` keeps only the first (highest-drop) windows. Negative scores count as 0.
    """
    if rule not in STL_HEATMAP_RULES:
        raise ValueError(f"STL heatmap rule must be one of {STL_HEATMAP_RULES}, not {rule!r}")
    if isinstance(windows, tuple):
        boxes, scores = windows
    else:
        boxes, scores = windows.boxes, windows.scores
        if size is None:
            size = tuple(windows.image_size)
    if size is None:
        raise ValueError("give the image size (H, W)")
    h, w = int(size[0]), int(size[1])
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.maximum(np.asarray(scores, np.float64).reshape(-1), 0.0)
    if top is not None:
        boxes, scores = boxes[:top], scores[:top]
    b = np.round(boxes).astype(np.int64)
    inside = (b[:, 0] <= w - 1) & (b[:, 1] <= h - 1) & (b[:, 2] >= 0) & (b[:, 3] >= 0)
    b, scores = b[inside], scores[inside]
    x0 = np.clip(b[:, 0], 0, w - 1)
    y0 = np.clip(b[:, 1], 0, h - 1)
    x1 = np.clip(b[:, 2], 0, w - 1)
    y1 = np.clip(b[:, 3], 0, h - 1)
    ok = (x1 >= x0) & (y1 >= y0)
    x0, y0, x1, y1, d = x0[ok], y0[ok], x1[ok], y1[ok], scores[ok]
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    vals = d / area if rule == "area" else d

    def paint(v):  # sum of v over the boxes covering each pixel (2-D difference array)
        diff = np.zeros((h + 1, w + 1), np.float64)
        np.add.at(diff, (y0, x0), v)
        np.add.at(diff, (y0, x1 + 1), -v)
        np.add.at(diff, (y1 + 1, x0), -v)
        np.add.at(diff, (y1 + 1, x1 + 1), v)
        return diff.cumsum(0).cumsum(1)[:h, :w]

    heat = paint(vals)
    if rule == "mean":
        count = paint(np.ones_like(vals))
        heat = np.divide(heat, count, out=np.zeros_like(heat), where=count > 0.5)
    return heat
