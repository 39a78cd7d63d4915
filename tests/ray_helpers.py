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
