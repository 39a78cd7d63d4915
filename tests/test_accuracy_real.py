"""Top-5 accuracy of the real classifiers on the 650 ILSVRC-2012 val images in ../shared.

Slow (minutes on 2 CPU cores) but run in CI: it is what shows that the model files are decoded
and preprocessed correctly (a wrong channel order, mean or weight layout drops top-5 far below).

* EfficientNet-Lite0 (images resized 227 -> 224, PIL bilinear): top-5 >= 0.85.
* SqueezeNet v1.0 decoded from Deep Compression (Caffe preprocessing, the images are already
  227x227): top-5 >= 0.80 (its published ImageNet top-5 is 80.3%) in the torch engine and in
  the pycaffe engine, on all 650 images.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stl.models import PROB, build_classifier

pytestmark = [pytest.mark.slow, pytest.mark.shared]


@pytest.fixture(scope="module")
def val_set(ilsvrc_dir):
    lines = [l.split(",") for l in (ilsvrc_dir / "metadata" / "class_labels.txt").read_text().split()]
    assert len(lines) == 650
    images = np.stack([np.asarray(Image.open(ilsvrc_dir / name).convert("RGB")) for name, _ in lines])
    labels = np.array([int(label) for _, label in lines])
    assert images.shape == (650, 227, 227, 3)
    return images, labels


def topk(prob, labels):
    order = np.argsort(-prob, axis=1)
    return float((order[:, 0] == labels).mean()), float((order[:, :5] == labels[:, None]).any(1).mean())


def test_efficientnet_lite0_top5(val_set, lite0):
    images, labels = val_set
    resized = np.stack([np.asarray(Image.fromarray(im).resize((224, 224), Image.BILINEAR)) for im in images])
    top1, top5 = topk(lite0(resized, outputs=(PROB,), batch_size=32)[PROB], labels)
    print(f"EfficientNet-Lite0 on {len(labels)} ILSVRC val images: top-1 {top1:.4f}, top-5 {top5:.4f}")
    assert top5 >= 0.85


@pytest.mark.parametrize("engine", ["torch", pytest.param("caffe", marks=pytest.mark.caffe)])
def test_squeezenet_top5(val_set, shared_dir, engine, monkeypatch, request):
    if engine == "caffe":
        request.getfixturevalue("require_pycaffe")
    monkeypatch.setenv("STL_SHARED", str(shared_dir))
    images, labels = val_set
    clf = build_classifier("squeezenet", engine=engine)
    top1, top5 = topk(clf(images, outputs=(PROB,), batch_size=16)[PROB], labels)
    print(f"SqueezeNet v1.0 ({engine} engine) on {len(labels)} ILSVRC val images: top-1 {top1:.4f}, top-5 {top5:.4f}")
    assert top5 >= 0.80
