"""Stub classifiers and contexts shared by several test modules (not a test module itself)."""
import numpy as np

from stl.core.config import DEFAULT
from stl.core.localization import ImageContext
from stl.core.segmentation import Segmentation, region_boxes_and_sizes
from stl.models.base import FEATURE, LOGITS, PROB, Classifier, ClassList

A_RGB, B_RGB, C_RGB = (200, 10, 10), (10, 200, 10), (10, 180, 30)


class StubClassifier(Classifier):
    """Two classes on 10x30 images. p0 = 0.1 + 0.8 * (unmasked pixels of columns 0-9) / 100,
    so masking region A (columns 0-9) drops class 0 from 0.9 to 0.1. FEATURE = mean colour."""

    def __init__(self):
        self.name = "stub"
        self.input_size = (10, 30)
        self.classes = ClassList(["n0", "n1"], ["zero", "one"])
        self.mask_color = np.zeros(3, np.float32)
        self.calls = []

    def forward(self, images, outputs=(PROB, FEATURE)):
        images = np.asarray(images, np.float64)
        self.calls.append(len(images))
        visible = (images[:, :, :10].sum(axis=3) > 0).sum(axis=(1, 2)) / 100.0
        p0 = 0.1 + 0.8 * visible
        prob = np.stack([p0, 1 - p0], 1)
        feat = images.mean(axis=(1, 2))
        return {PROB: prob, FEATURE: feat, LOGITS: np.log(prob)}


def three_block_context(clf, config=DEFAULT):
    img = np.zeros((10, 30, 3), np.uint8)
    img[:, :10], img[:, 10:20], img[:, 20:] = A_RGB, B_RGB, C_RGB
    ctx = ImageContext(img, clf, config)
    labels = np.repeat(np.array([[0] * 10 + [1] * 10 + [2] * 10]), 10, axis=0).astype(np.int32)
    boxes, sizes = region_boxes_and_sizes(labels)
    ctx.segmentations = [Segmentation("hand", labels, boxes, sizes, np.ones(3, bool))]
    return ctx


class BatchSizeShiftNet(Classifier):
    """A 6-class linear net on 4x4-pooled square inputs (32x32 by default) whose class-0 logit and first feature move
    by 1e-6 x (rows in the batch): the batch-size dependence of a real CPU network, made large
    enough to see. Records the size of every batch it runs."""

    def __init__(self, pad: bool = True, side: int = 32):
        self.name = "shift"
        self.input_size = (side, side)
        self.classes = ClassList([f"n{i}" for i in range(6)], [f"c{i}" for i in range(6)])
        self.mask_color = np.full(3, 127.0, np.float32)
        self.preferred_batch_size = 8
        self.pad_batches = pad
        self.weights = np.random.default_rng(3).normal(size=(48, 6)) / 40.0
        self.batches = []

    def forward(self, images, outputs=(PROB, FEATURE)):
        x = np.asarray(images, np.float64)
        b = len(x)
        self.batches.append(b)
        q = self.input_size[0] // 4
        feat = x.reshape(b, 4, q, 4, q, 3).mean(axis=(2, 4)).reshape(b, 48) / 255.0
        logits = feat @ self.weights * 10
        logits[:, 0] += 1e-6 * b
        feat[:, 0] += 1e-6 * b
        e = np.exp(logits - logits.max(1, keepdims=True))
        return {PROB: (e / e.sum(1, keepdims=True)).astype(np.float32), FEATURE: feat.astype(np.float32),
                LOGITS: logits.astype(np.float32)}
