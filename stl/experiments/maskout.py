"""Fig. 1 / Fig. 5 of the paper (and supplementary Figs. 1-2): the mask-out operation h_g(x, b)
of Eq. 1 seen through the network.

Two rows: the network input x (top) and its masked version h_g(x, b) (bottom), where b is the
top STL window. One column per layer (convolution, pooling, normalisation, fully connected /
class scores), each showing a 3x3 grid of kernel responses, and at the far right the score
f_c of the class c before and after masking. The 9 kernels (channels) of a layer are chosen
deterministically: the 9 with the largest mean absolute response change between the two rows,
mean_{h,w} |A_k(x) - A_k(h_g(x, b))|, ties to the lower channel index. A channel's two tiles
share one colour scale (0 to the larger of the two maxima of |A|), so what the mask removes is
visible as a darker bottom tile. Fully connected layers have no spatial extent: their 3x3 grid
shows the 9 chosen units as 9 cells.

Layer outputs come from the engine's own blobs for Caffe models (``Classifier.blobs``:
pycaffe's ``net.blobs[name].data`` after the forward pass, or the torch engine's layer
outputs; in-place ReLUs are applied in both, as pycaffe stores them) and from forward hooks for
EfficientNet-Lite0.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

log = logging.getLogger(__name__)

#: kernels shown per layer (a 3x3 grid)
NUM_KERNELS = 9

#: layer types whose outputs are shown for Caffe nets (fire-module internals of SqueezeNet --
#: convolutions named ``fireN/...`` -- are left out; their concatenation is shown)
CAFFE_SHOWN_TYPES = ("Convolution", "Pooling", "LRN", "InnerProduct", "Concat")


def hooked_layers(classifier):
    """The ``(module, label)`` pairs a PyTorch model declared at registration (``layers=`` of
    :func:`stl.models.register_model`; EfficientNet-Lite0: the stem, the last block of each stage,
    the head, the global pooling and the logits), or None."""
    from ..models.zoo import model_traits

    return model_traits(getattr(classifier, "name", None))["layers"]


# ----------------------------------------------------------------------------- layer outputs
def caffe_net_param(classifier):
    """The NetParameter of a Caffe-model classifier (either engine), or None."""
    net = getattr(classifier, "net", None)
    if hasattr(net, "net_param"):  # torch engine (CaffeNetModule)
        return net.net_param
    prototxt = getattr(classifier, "prototxt", None)  # pycaffe engine
    if prototxt:
        from ..models.caffe.io import load_net

        return load_net(prototxt)
    return None


def default_layers(classifier) -> List[Tuple[str, str]]:
    """``[(key, label)]`` of the layers Fig. 1 shows for this classifier (see module docstring)."""
    npar = caffe_net_param(classifier)
    if npar is not None:
        out = []
        for lp in npar.layer:
            if lp.type not in CAFFE_SHOWN_TYPES:
                continue
            if lp.type == "Convolution" and "/" in lp.name:
                continue
            top = lp.top[0]
            if top not in [k for k, _ in out]:
                out.append((top, f"{top} ({lp.type.lower()})"))
        return out
    layers = hooked_layers(classifier)
    if layers:
        return list(layers)
    raise ValueError(f"{classifier.name}: no layer list known for this classifier; pass layers=")


def layer_outputs(classifier, images: np.ndarray, layers: Sequence[str]) -> "OrderedDict[str, np.ndarray]":
    """Outputs of ``layers`` for a batch of network-input images (N, H, W, 3) RGB 0..255.

    Caffe models (both engines): the blobs as the engine stores them after the forward pass.
    EfficientNet-Lite0: the outputs of the named sub-modules, through forward hooks. Returns
    float32 arrays (N, C, H, W) or (N, D).
    """
    images = np.asarray(images, np.float32)
    if hasattr(classifier, "blobs"):
        blobs = classifier.blobs(images, list(layers))
        return OrderedDict((k, np.asarray(blobs[k], np.float32)) for k in layers)
    if hooked_layers(classifier):
        return _hooked_outputs(classifier, images, layers)
    raise ValueError(f"{classifier.name}: cannot read layer outputs of this classifier")


def _hooked_outputs(classifier, images, layers):

    modules = dict(classifier.net.named_modules())
    got: Dict[str, np.ndarray] = {}
    handles = []
    for key in layers:
        if key not in modules:
            raise KeyError(f"{classifier.name} has no module {key!r}")

        def hook(_m, _inp, out, key=key):
            got[key] = classifier.runtime.to_numpy(out)

        handles.append(modules[key].register_forward_hook(hook))
    try:
        classifier.forward(images, ("prob",))
    finally:
        for h in handles:
            h.remove()
    return OrderedDict((k, got[k].reshape(got[k].shape[0], -1) if got[k].ndim == 4 and got[k].shape[2:] == (1, 1)
                        else got[k]) for k in layers)


# ----------------------------------------------------------------------------- kernel choice
def response_change(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per channel: mean over positions of |a - b| for (C, H, W) or (D,) responses."""
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return d.reshape(d.shape[0], -1).mean(axis=1) if d.ndim > 1 else d


def choose_kernels(a: np.ndarray, b: np.ndarray, k: int = NUM_KERNELS) -> np.ndarray:
    """The ``k`` channels with the largest response change (ties: lower index first), in that order."""
    change = response_change(a, b)
    return np.argsort(-change, kind="stable")[:k]


# ----------------------------------------------------------------------------- the figure's data
@dataclass
class LayerPanel:
    key: str
    label: str
    shape: Tuple[int, ...]  # one image's output shape
    kernels: np.ndarray  # chosen channel indices
    original: np.ndarray  # (k, h, w) or (k,) responses on x
    masked: np.ndarray  # same on h_g(x, b)
    change: np.ndarray  # (k,) mean |difference| of each chosen channel
    layer_change: float  # mean |difference| over the whole layer


@dataclass
class MaskoutFigure:
    image_id: str
    image: np.ndarray  # network input, uint8 (H, W, 3)
    masked: np.ndarray  # h_g(x, b) exactly as the network got it, float32 0..255
    box: np.ndarray  # the masked box on the network input (pixel-inclusive)
    class_index: int
    class_name: str
    score: float  # f_c(x)
    score_masked: float  # f_c(h_g(x, b))
    panels: List[LayerPanel]
    model: str
    engine: str
    gt_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # on the network input
    top1_box: Optional[np.ndarray] = None  # the top-1 STL box (Fig. 5), on the network input
    note: str = ""

    @property
    def drop(self) -> float:
        return self.score - self.score_masked


def maskout_figure(classifier, image_u8: np.ndarray, box, class_index: int, image_id: str = "",
                   layers: Optional[Sequence] = None, k: int = NUM_KERNELS) -> MaskoutFigure:
    """Layer responses of the network-input image and of its version with ``box`` masked out.

    ``image_u8`` is the image already resized to ``classifier.input_size``; ``box`` is on it.
    """
    from ..models.base import PROB, mask_boxes

    layers = list(layers) if layers is not None else default_layers(classifier)
    keys = [l[0] if isinstance(l, (tuple, list)) else l for l in layers]
    labels = [l[1] if isinstance(l, (tuple, list)) else l for l in layers]
    x = np.asarray(image_u8, np.float32)[None]
    box = np.round(np.asarray(box, np.float64)).astype(np.int64)
    masked = mask_boxes(x, [0], [box], classifier.mask_color)
    both = np.concatenate([x, masked])
    outs = layer_outputs(classifier, both, keys)
    prob = classifier.forward(both, (PROB,))[PROB]
    panels = []
    for key, label in zip(keys, labels):
        a, b = outs[key][0], outs[key][1]
        if a.ndim == 3 and a.shape[1:] == (1, 1):
            a, b = a[:, 0, 0], b[:, 0, 0]
        kern = choose_kernels(a, b, k)
        change = response_change(a, b)
        panels.append(LayerPanel(key, label, tuple(a.shape), kern, a[kern], b[kern], change[kern],
                                 float(change.mean())))
    return MaskoutFigure(image_id, np.asarray(image_u8, np.uint8), masked[0],
                         box, int(class_index), classifier.classes.words[class_index].split(",")[0],
                         float(prob[0, class_index]), float(prob[1, class_index]), panels,
                         getattr(classifier, "name", "?"), engine_name(classifier))


def engine_name(classifier) -> str:
    t = type(classifier).__name__
    return {"PyCaffeClassifier": "pycaffe", "TorchCaffeClassifier": "torch (Caffe layers)",
            "EfficientNetLite0": "torch (forward hooks)"}.get(t, t)


# ----------------------------------------------------------------------------- drawing
def mosaic(tiles: np.ndarray, vmax: np.ndarray, grid: int = 3, pad: int = 1) -> np.ndarray:
    """A grid x grid mosaic of (k, h, w) tiles (each scaled by its vmax) with NaN separators;
    (k,) vectors give one cell per unit."""
    tiles = np.asarray(tiles, np.float64)
    if tiles.ndim == 1:  # fc units: one 6x6 cell each
        tiles = np.repeat(np.repeat(tiles[:, None, None], 6, 1), 6, 2)
    k, h, w = tiles.shape
    out = np.full((grid * h + (grid - 1) * pad, grid * w + (grid - 1) * pad), np.nan)
    for i in range(min(k, grid * grid)):
        r, c = divmod(i, grid)
        v = np.abs(tiles[i]) / vmax[i] if vmax[i] > 0 else np.zeros((h, w))
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = v
    return out


def draw_box(ax, box, color, lw=2.0, ls="-"):
    import matplotlib.patches as patches

    x0, y0, x1, y1 = box
    ax.add_patch(patches.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False, ec=color, lw=lw,
                                   ls=ls))


def plot_maskout(figs: Sequence[MaskoutFigure], title: str = "", caption: str = ""):
    """Two rows per image (x, h_g(x, b)); columns: input, one per layer, class score."""
    from matplotlib.figure import Figure

    n_layers = max(len(f.panels) for f in figs)
    ncols = n_layers + 2
    nrows = 2 * len(figs)
    fig = Figure(figsize=(1.25 * ncols + 0.6, 1.3 * nrows + 1.5))
    gs = fig.add_gridspec(nrows, ncols, width_ratios=[1.25] + [1] * n_layers + [0.9], hspace=0.35, wspace=0.12)
    for fi, f in enumerate(figs):
        vmax = [np.maximum(np.abs(p.original).reshape(len(p.kernels), -1).max(1),
                           np.abs(p.masked).reshape(len(p.kernels), -1).max(1)) for p in f.panels]
        for row in range(2):
            r = 2 * fi + row
            ax = fig.add_subplot(gs[r, 0])
            ax.imshow(f.image if row == 0 else np.clip(f.masked, 0, 255) / 255.0)
            if row == 0:
                for g in f.gt_boxes:
                    draw_box(ax, g, "white", 1.2, "--")
                draw_box(ax, f.box, "red", 1.5)
                if f.top1_box is not None and not np.array_equal(f.top1_box, f.box):
                    draw_box(ax, f.top1_box, "yellow", 1.2)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylabel(("x" if row == 0 else "h_g(x, b)") + (f"\n{f.image_id[-8:]}" if row == 0 else ""),
                          fontsize=7)
            if r == 0:
                ax.set_title("input", fontsize=7)
            for li, p in enumerate(f.panels):
                ax = fig.add_subplot(gs[r, 1 + li])
                tiles = p.original if row == 0 else p.masked
                ax.imshow(mosaic(tiles, vmax[li]), cmap="inferno", vmin=0, vmax=1, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(p.label.replace(" (", "\n("), fontsize=6)
                else:
                    ax.set_xlabel(f"chg {p.layer_change:.3g}", fontsize=5.5)
            ax = fig.add_subplot(gs[r, ncols - 1])
            val = f.score if row == 0 else f.score_masked
            ax.barh([0], [val], color="tab:green" if row == 0 else "tab:red", height=0.5)
            ax.set_xlim(0, 1)
            ax.set_yticks([])
            ax.tick_params(axis="x", labelsize=5.5)
            ax.text(0.5, 0.75, f"{val:.3f}", ha="center", fontsize=7, transform=ax.transAxes)
            if row == 0:
                ax.set_title(f"f_c: {f.class_name[:14]}", fontsize=6)
            else:
                ax.set_xlabel(f"drop {f.drop:.3f}", fontsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    if caption:
        fig.text(0.01, 0.005, wrap_caption(caption), fontsize=6.5, va="bottom", ha="left")
    fig.subplots_adjust(left=0.03, right=0.99, top=1 - 0.75 / fig.get_figheight(),
                        bottom=0.75 / fig.get_figheight())
    return fig


def wrap_caption(text, width=210):
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def panel_rows(f: MaskoutFigure) -> List[dict]:
    """The numbers behind one image's figure: per layer and chosen kernel."""
    rows = []
    for p in f.panels:
        for rank, (kern, a, b, c) in enumerate(zip(p.kernels, p.original, p.masked, p.change)):
            rows.append({"image": f.image_id, "model": f.model, "engine": f.engine, "layer": p.key,
                         "shape": "x".join(str(s) for s in p.shape), "rank": rank + 1, "kernel": int(kern),
                         "mean_original": float(np.mean(a)), "mean_masked": float(np.mean(b)), "change": float(c),
                         "layer_change": p.layer_change})
    rows.append({"image": f.image_id, "model": f.model, "engine": f.engine, "layer": f"score:{f.class_name}",
                 "shape": "", "rank": 0, "kernel": f.class_index, "mean_original": f.score,
                 "mean_masked": f.score_masked, "change": f.drop, "layer_change": f.drop})
    return rows


PANEL_COLUMNS = ["image", "model", "engine", "layer", "shape", "rank", "kernel", "mean_original", "mean_masked",
                 "change", "layer_change"]


# ----------------------------------------------------------------------------- Fig. 1 / Fig. 5
FIG1_RULE = ("image: the one with the largest top-1 STL-CL drop among the images whose top-1 prediction "
             "is their true class (if none, the largest top-1 drop overall)")
FIG5_RULE = ("failure cases: the images with the LOWEST max-drop (top-1 STL-CL window's drop) among those whose "
             "top-5 prediction contains the true class -- the classifier knows the object, yet masking no "
             "region hurts much (multiple instances, context)")
KERNEL_RULE = ("3x3 kernels per layer: the 9 channels with the largest mean |response(x) - response(h_g(x,b))|, "
               "ties to the lower index; a channel's two tiles share one colour scale (0..max |response|); fc "
               "layers: one cell per unit")


@dataclass
class Candidate:
    image_id: str
    record: object
    image: np.ndarray  # network input, uint8
    class_index: int  # the true class used (first label the classifier knows)
    prob: np.ndarray  # f(x)
    top1_box: np.ndarray  # on the network input
    top1_drop: float
    top1_iou: float


def candidates(dataset, run, classifier, input_resize: Optional[str] = None) -> List[Candidate]:
    """The stored images of an STL-CL run with what Fig. 1 / Fig. 5 select on (one forward each).

    Each image is resized to the network input as STL resized it (``input_resize``:
    ``STLConfig.input_resize``; default: the authors' profile's)."""
    from ..core.config import DEFAULT
    from ..core.boxes import iou_matrix, scale_boxes
    from ..io import as_rgb_uint8
    from ..core.localization import resize_to_input
    from ..models.base import PROB

    out = []
    for image_id in run.image_ids:
        if image_id not in dataset or len(run.scores[image_id]) == 0:
            continue
        rec = dataset.record(image_id)
        labels = []
        for lab in rec.labels:
            try:
                labels.append(classifier.classes.index(lab))
            except KeyError:
                pass
        if not labels:
            continue
        rgb = as_rgb_uint8(rec.read())
        img = resize_to_input(rgb, classifier.input_size, input_resize or DEFAULT.input_resize)
        prob = classifier.forward(img[None].astype(np.float32), (PROB,))[PROB][0]
        box = scale_boxes(run.boxes[image_id][:1], rgb.shape[:2], classifier.input_size)[0]
        iou = float(iou_matrix(run.boxes[image_id][:1].astype(np.float64), rec.boxes).max()) if len(rec.boxes) else 0.0
        out.append(Candidate(image_id, rec, img, labels[0], prob, np.round(box), float(run.scores[image_id][0]), iou))
    return out


def _gt_on_input(c: Candidate, input_size) -> np.ndarray:
    from ..core.boxes import scale_boxes

    return np.round(scale_boxes(c.record.boxes, c.record.size, input_size)) if len(c.record.boxes) else np.zeros((0, 4))


def select_fig1(cands: Sequence[Candidate], image_id: Optional[str] = None) -> Candidate:
    if image_id:
        for c in cands:
            if c.image_id == image_id:
                return c
        raise KeyError(f"image {image_id!r} is not among the stored STL-CL images")
    correct = [c for c in cands if int(np.argmax(c.prob)) == c.class_index]
    pool = correct or list(cands)
    if not pool:
        raise ValueError("no stored image with STL windows and a known class")
    return max(pool, key=lambda c: (c.top1_drop, -cands.index(c)))


def select_fig5(cands: Sequence[Candidate], num: int) -> List[Candidate]:
    """FIG5_RULE: lowest top-1 drop among images whose top-5 contains the true class."""
    known = [c for c in cands if c.class_index in np.argsort(-c.prob, kind="stable")[:5]]
    return sorted(known, key=lambda c: (c.top1_drop, cands.index(c)))[:num]


def run_maskout(kind: str, data, model, out, runs_dir=None, image_id: Optional[str] = None, num: int = 3,
                progress: bool = True, classifier=None, config=None) -> dict:
    """Fig. 1 (``kind="fig1"``) or Fig. 5 (``"fig5"``) on ``data`` (a :class:`common.DataChoice`)
    with the classifier of ``model`` (a :class:`stl.models.spec.ModelSpec` or a registry name;
    ``classifier``: one already built).

    STL-CL windows come from the stored run ``<runs>/<dataset>/STL-CL__<model>.h5`` (computed or
    resumed here, shared with ``stl run`` / ``stl eval``) with ``config`` (an STLConfig; default: the
    authors' profile), whose ``caffe_mean`` the classifier uses and whose ``input_resize`` makes
    the figures' inputs. Writes ``<kind>.png/.pdf``,
    ``<kind>_kernels.csv`` and ``<kind>.md``; returns ``{"figures": [MaskoutFigure], "files": [...]}``.
    """
    from pathlib import Path

    from ..models.spec import ModelSpec
    from .common import DEFAULT_RUNS, build, csv_text, save_figure, stored_run, write_text

    out = Path(out)
    from ..core.config import DEFAULT

    config = config or DEFAULT
    model = ModelSpec.of(model)
    clf = classifier or build(model, config.caffe_mean)
    run, path = stored_run(data.dataset, "STL-CL", model.run_name, lambda: clf, runs_dir or DEFAULT_RUNS, config=config,
                           progress=progress)
    cands = candidates(data.dataset, run, clf, config.input_resize)
    if kind == "fig1":
        chosen, rule = [select_fig1(cands, image_id)], (f"image {image_id} (given)" if image_id else FIG1_RULE)
    elif kind == "fig5":
        chosen, rule = select_fig5(cands, num), FIG5_RULE
        if not chosen:
            raise ValueError("no stored image has its true class in the top-5 predictions")
    else:
        raise ValueError(kind)
    figs = []
    for c in chosen:
        f = maskout_figure(clf, c.image, c.top1_box, c.class_index, c.image_id)
        f.gt_boxes = _gt_on_input(c, clf.input_size)
        f.top1_box = c.top1_box
        f.note = (f"top-1 STL-CL drop {c.top1_drop:.3f}, top-1 IoU with ground truth {c.top1_iou:.2f}, "
                  f"true class rank {int(np.flatnonzero(np.argsort(-c.prob, kind='stable') == c.class_index)[0]) + 1}")
        figs.append(f)
    name = {"fig1": "Fig. 1 -- the mask-out operation through the network",
            "fig5": "Fig. 5 -- failure cases (small drops)"}[kind]
    caption = (f"{name}. Model {clf.name}, engine {engine_name(clf)}. Rows: network input x (red: masked box b = "
               f"top-1 STL-CL window; dashed white: ground truth) and h_g(x, b). Selection: {rule}. {KERNEL_RULE}. "
               f"Right: softmax score of the true class before/after masking. Data: {data.description}; "
               f"{len(cands)} stored images to choose from ({path}).")
    fig = plot_maskout(figs, title=f"{name} ({clf.name})", caption=caption)
    files = save_figure(fig, out, kind)
    rows = [r for f in figs for r in panel_rows(f)]
    files.append(write_text(out / f"{kind}_kernels.csv", csv_text(rows, PANEL_COLUMNS)))
    md = [f"# {name}\n", caption + "\n", "| image | class | f_c(x) | f_c(h_g(x,b)) | drop | box b (input px) | note |",
          "|---|---|---:|---:|---:|---|---|"]
    for f in figs:
        md.append(f"| {f.image_id} | {f.class_name} | {f.score:.4f} | {f.score_masked:.4f} | {f.drop:.4f} | "
                  f"{[int(v) for v in f.box]} | {f.note} |")
    md += ["", "Per layer: mean |change| over the whole layer and the chosen kernels (`"
           f"{kind}_kernels.csv` has every value).", "",
           "| image | layer | shape | layer change | kernels (channel: change) |", "|---|---|---|---:|---|"]
    for f in figs:
        for p in f.panels:
            ks = ", ".join(f"{int(k)}: {c:.3g}" for k, c in zip(p.kernels, p.change))
            md.append(f"| {f.image_id} | {p.key} | {'x'.join(map(str, p.shape))} | {p.layer_change:.4g} | {ks} |")
    files.append(write_text(out / f"{kind}.md", "\n".join(md) + "\n"))
    return {"figures": figs, "files": files, "run": path, "candidates": len(cands)}

