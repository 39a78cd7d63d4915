"""Test-only proposal method for the executor tests, importable by Ray workers
(tests/ is put on their PYTHONPATH by tests/test_ray_executor.py).

``PIXEL-TEST``: a cheap deterministic method whose windows depend on the pixels
(so a mixed-up or lost image shows), made slow with ``delay`` seconds per image,
and -- with ``crash_on=<image id>`` -- killing its own process (``os._exit``, as a
segfault or the OOM killer would) whenever that image is in its batch.
"""
from __future__ import annotations

import os
import time

import numpy as np

from stl.proposals import ProposalMethod, register_method

NAME = "PIXEL-TEST"


def pixel_windows(image):
    """3..7 windows computed from the image's channel means (hand-checkable)."""
    h, w = image.shape[:2]
    m = image.reshape(-1, image.shape[-1]).mean(0)
    k = 3 + int(m[0]) % 5
    x0 = (np.arange(k) * m[1]) % (w / 2)
    y0 = (np.arange(k) * m[2]) % (h / 2)
    boxes = np.stack([x0, y0, x0 + w / 3, y0 + h / 3], 1)
    return boxes, np.linspace(1, 0, k) + m[0] / 1000


@register_method(NAME, needs_image_id=True)
class PixelTest(ProposalMethod):
    name = NAME
    needs_image_id = True

    def __init__(self, delay: float = None, crash_on: str = ""):
        # $STL_TEST_PIXEL_DELAY: the delay of a run started through the command line
        self.delay = float(os.environ.get("STL_TEST_PIXEL_DELAY", 0) if delay is None else delay)
        self.crash_on = crash_on

    def propose_batch(self, images, labels=None, image_ids=None):
        if self.crash_on and self.crash_on in (image_ids or ()):
            os._exit(3)  # the worker process dies, no exception reaches anyone
        out = []
        for im in images:
            time.sleep(self.delay)
            out.append(pixel_windows(im))
        return out

    def propose(self, image, labels=None, image_id=None):
        return self.propose_batch([image], [labels], [image_id])[0]


# ----------------------------------------------------------------------------- a plug-in model and method
# registered under new names, with traits only (no name of theirs is known to stl): TINY-NET is
# a PyTorch-free classifier; CONFIG-TEST runs it and takes an STLConfig (as STL does).
TINY_MODEL = "tiny_test_net"
CONFIG_METHOD = "CONFIG-TEST"

from stl.models import register_model  # noqa: E402
from stl.models.base import FEATURE, LOGITS, PROB, Classifier, ClassList  # noqa: E402


class TinyNet(Classifier):
    """Two classes on 8x8 inputs: p(class 0) = mean red / 255 (clipped to [0.01, 0.99])."""

    def __init__(self, device="cpu"):
        self.name = TINY_MODEL
        self.device = device
        self.input_size = (8, 8)
        self.classes = ClassList(["n0", "n1"], ["zero", "one"])
        self.mask_color = np.zeros(3, np.float32)

    def forward(self, images, outputs=(PROB, FEATURE)):
        x = np.asarray(images, np.float64)
        p0 = np.clip(x[..., 0].mean(axis=(1, 2)) / 255.0, 0.01, 0.99)
        prob = np.stack([p0, 1 - p0], 1)
        return {PROB: prob, FEATURE: x.mean(axis=(1, 2)), LOGITS: np.log(prob)}


@register_model(TINY_MODEL)
def build_tiny(engine="torch", device="cpu", precision="fp32"):
    return TinyNet(device)


@register_method(CONFIG_METHOD, uses_classifier=True)
def config_test(classifier, config=None):
    """One whole-image window scored p(class 0) + config.nms_iou (so the config that reached
    the method shows in the stored score)."""
    from stl.core.config import DEFAULT
    from stl.core.localization import resize_to_input

    config = config or DEFAULT

    class ConfigTest(ProposalMethod):
        name = CONFIG_METHOD
        uses_classifier = True

        def __init__(self):
            self.classifier, self.config = classifier, config

        def propose(self, image, labels=None, image_id=None):
            x = resize_to_input(image, classifier.input_size, config.input_resize)[None].astype(np.float32)
            p0 = float(classifier.forward(x, (PROB,))[PROB][0, 0])
            h, w = image.shape[:2]
            return np.array([[0.0, 0.0, w - 1.0, h - 1.0]]), np.array([p0 + config.nms_iou])

    return ConfigTest()
