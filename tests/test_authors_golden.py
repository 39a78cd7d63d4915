"""STL under the authors profile against the authors' own code (issue: fidelity).

``../shared/reference/authors_stl_golden.{json,npz}`` records the authors' STL
(``self_taught_loc.py``, ported line for line) on one real 227x227 ILSVRC image with four
GIVEN label maps and a tiny fully specified fake network that, like their
``NetworkCaffe.evaluate``, owns its preprocessing (central square of whatever it is
given, bilinear resize to 8x8). Here the same network is a :class:`Classifier` and our
STL must reproduce every window of every hierarchy (box, drop to 1e-9, pixel count),
the pooled order and the final NMS list, for STL-WL and STL-CL.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from stl.core.config import STLConfig
from stl.core.localization import ForwardScheduler, ImageContext, cluster_hierarchy, localize, pool_and_suppress
from stl.models.base import FEATURE, LOGITS, PROB, Classifier, ClassList, center_square


class AuthorsFakeNet(Classifier):
    """The fixture's ``fakenet_spec``: central square, 8x8 bilinear resize (skimage, constant
    zero border, no anti-aliasing) of ``crop / 255``, x = gain_in * (R - mean), fc7 =
    relu(W7 x + b7), logits = gain_out * (W8 fc7 + b8), softmax. float64 throughout."""

    def __init__(self, z):
        self.name = "authors_fakenet"
        self.input_size = (227, 227)  # STL's working image; the net resizes to 8x8 itself
        self.W7, self.b7, self.W8, self.b8 = z["W7"], z["b7"], z["W8"], z["b8"]
        self.mean_in = np.asarray(z["fakenet_mean_in"], np.float64)
        self.gain_in = float(z["fakenet_input_gain"])
        self.gain_out = float(z["fakenet_logit_gain"])
        self.classes = ClassList([f"c{i}" for i in range(10)], [f"class {i}" for i in range(10)])
        self.mask_color = np.asarray(z["mean_fill"], np.float32)
        self.preferred_batch_size = 64
        self.calls = 0

    def evaluate(self, img):
        from skimage.transform import resize

        a = center_square(np.asarray(img, np.float64)) / 255.0
        r = np.clip(resize(a, (8, 8), order=1, mode="constant", cval=0, clip=False, preserve_range=False,
                           anti_aliasing=False), 0, 1)
        x = (self.gain_in * (r - self.mean_in)).reshape(-1)
        fc7 = np.maximum(self.W7 @ x + self.b7, 0.0)
        logits = self.gain_out * (self.W8 @ fc7 + self.b8)
        e = np.exp(logits - logits.max())
        self.calls += 1
        return e / e.sum(), fc7, logits

    def _outputs(self, results, outputs):
        key = {PROB: 0, FEATURE: 1, LOGITS: 2}
        return {o: np.stack([r[key[o]] for r in results]) for o in outputs}

    def forward(self, images, outputs=(PROB, FEATURE)):
        return self._outputs([self.evaluate(im) for im in images], outputs)

    def forward_crops(self, crops, outputs=(FEATURE,), crop_mode="center_square"):
        return self._outputs([self.evaluate(c) for c in crops], outputs)


@pytest.fixture(scope="module")
def golden(shared_dir):
    ref = shared_dir / "reference"
    with open(ref / "authors_stl_golden.json") as f:
        g = json.load(f)
    return g, dict(np.load(ref / "authors_stl_golden.npz"))


def _variant(golden, variant):
    g, z = golden
    net = AuthorsFakeNet(z)
    cfg = STLConfig.for_profile("authors")
    ctx = ImageContext(z["image"], net, cfg, label_maps=list(z["label_maps"]))
    label = None if variant == "WL" else int(g["CL"]["class_guess"])
    return g, z, net, cfg, ctx, label


def _authors_rows(h):
    rows = h["windows"]
    boxes = np.array([[r[9], r[10], r[11], r[12]] for r in rows], np.float64)
    return boxes, np.array([r[13] for r in rows]), np.array([r[14] for r in rows])


def test_fakenet_full_image_matches_fixture(golden):
    g, z, net, cfg, ctx, _ = _variant(golden, "WL")
    prob, fc7, _ = net.evaluate(ctx.image)
    np.testing.assert_allclose(prob, z["full_prob"], rtol=0, atol=1e-15)
    np.testing.assert_allclose(fc7, z["full_fc7"], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(ctx.mask_color, [122, 116, 104])


@pytest.mark.parametrize("variant", ["WL", "CL"])
def test_every_window_of_every_hierarchy(golden, variant):
    g, z, net, cfg, ctx, label = _variant(golden, variant)
    sched = ForwardScheduler(net, cfg)
    sched.full_image_probs([ctx])
    from stl.core.similarity import top_classes

    classes = np.array([label]) if label is not None else top_classes(ctx.prob_full, 5, cfg.drop_rule)
    if label is None:
        assert classes.tolist() == g["full_image"]["top5"]
    jobs = [(ctx, cluster_hierarchy(ctx, s, classes, -1 if label is None else label)) for s in range(4)]
    results = sched.run(jobs)
    for s, (boxes, drops, levels) in enumerate(results):
        h = g[variant]["hierarchies"][s]
        a_boxes, a_drops, a_sizes = _authors_rows(h)
        assert len(boxes) == h["n_windows"] == len(a_boxes), f"segmentation {s}"
        # the authors' box is (xmin, ymin, xmax, ymax) used as exclusive: ours is inclusive
        np.testing.assert_array_equal(boxes + [0, 0, 1, 1], a_boxes, err_msg=f"segmentation {s}")
        np.testing.assert_allclose(drops, a_drops, rtol=0, atol=1e-9, err_msg=f"segmentation {s}")
    # the number of network evaluations, as theirs (no de-duplication needed to match:
    # count the requests), is at least the distinct ones we ran
    assert ctx.num_forwards <= g[variant]["n_net_calls"]


@pytest.mark.parametrize("variant", ["WL", "CL"])
def test_pooled_order_and_final_nms(golden, variant):
    g, z, net, cfg, ctx, label = _variant(golden, variant)
    wins = localize(ctx, net, label, cfg)
    gv = g[variant]
    final = gv["final_nms"]
    assert len(wins) == len(final)
    np.testing.assert_array_equal(wins.input_boxes + [0, 0, 1, 1], np.array([r[4] for r in final], np.float64))
    np.testing.assert_allclose(wins.scores, [r[6] for r in final], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(wins.segmentation, [r[2] for r in final])
    # boxes in original pixels: the 227 image is the original here
    np.testing.assert_array_equal(wins.boxes, wins.input_boxes)


def test_pooled_sorted_order(golden):
    """The stable sort of the pooled windows (before NMS) equals the authors' order."""
    g, z, net, cfg, ctx, _ = _variant(golden, "WL")
    pooled_boxes, pooled_drops = [], []
    for s in range(4):
        b, d, _ = _authors_rows(g["WL"]["hierarchies"][s])
        pooled_boxes.append(b)
        pooled_drops.append(d)
    drops = np.concatenate(pooled_drops)
    from stl.core.boxes import sort_by_score

    np.testing.assert_array_equal(sort_by_score(drops), g["WL"]["pooled_sorted_order"])
    boxes = np.concatenate(pooled_boxes) - [0, 0, 1, 1]
    keep = pool_and_suppress(boxes, drops, cfg, (227, 227))
    np.testing.assert_array_equal(keep, [r[1] for r in g["WL"]["final_nms"]])


def test_nms_boundary_pairs_follow_float_iou(golden):
    """Exact IoU 1/2 computed as 0.5000000000000002 suppresses, as in the authors' code."""
    from stl.core.boxes import iou_authors, normalized_exclusive

    g, _ = golden
    for pair in g["WL"]["robustness"]["nms_boundary_pairs"]:
        a = normalized_exclusive(np.array(pair["candidate_box"], float) - [0, 0, 1, 1], (227, 227))[0]
        b = normalized_exclusive(np.array(pair["kept_box"], float) - [0, 0, 1, 1], (227, 227))
        iou = iou_authors(a, b)[0]
        assert iou == pair["float_iou"] and iou > 0.5
