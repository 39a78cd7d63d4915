"""Files of the Caffe models ``caffenet``, ``alexnet``, ``squeezenet``, ``caffenet_random``
(registered in :mod:`stl.models.zoo`).

* ``caffenet`` / ``alexnet``: the paper's networks (BVLC reference CaffeNet, BVLC AlexNet).
  Prototxt ``stl/resources/models/<bvlc name>/deploy.prototxt`` (packaged), weights
  ``<weights dir>/<bvlc name>.caffemodel`` downloaded by ``make models`` (:mod:`stl.paths`).
* ``squeezenet``: SqueezeNet v1.0 decoded from the Deep Compression files in
  ``$STL_SHARED/models/squeezenet_v1.0_deep_compression`` (default ``../shared``), converted
  once to ``.cache/models/squeezenet_v1.0.caffemodel``.
* ``caffenet_random``: the CaffeNet architecture with seeded random weights (He-scaled
  Gaussians), written once to ``.cache/models/`` -- for speed benchmarks and parity tests
  where the real weights are not available. Its predictions are meaningless.

Mean: the ILSVRC-2012 mean image (``models/weights/ilsvrc_2012_mean.npy`` from ``make models``,
else ``$STL_SHARED/models/caffe/ilsvrc_2012_mean.npy``), subtracted as its centre crop
(``mean_mode="image"``); if neither exists, the per-channel mean
(104.00698793, 116.66876762, 122.67891434) with a logged warning. Pass ``mean=`` /
``mean_mode=`` to override.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..base import ModelError
from ... import resources
from ...paths import cache_dir, shared_dir, weights_dir

log = logging.getLogger(__name__)

BVLC_NAMES = {"caffenet": "bvlc_reference_caffenet", "alexnet": "bvlc_alexnet"}
RANDOM_WEIGHTS_VERSION = 2


def mean_file() -> Optional[Path]:
    """The ILSVRC-2012 mean image ``.npy``: project download first, then ``../shared``."""
    for p in (weights_dir() / "ilsvrc_2012_mean.npy", shared_dir() / "models" / "caffe" / "ilsvrc_2012_mean.npy"):
        if p.is_file():
            return p
    return None


def default_mean():
    """The ILSVRC mean image (3,256,256) BGR, or the per-channel mean (3,) with a warning."""
    p = mean_file()
    if p is not None:
        return np.load(p).astype(np.float32)
    from ..preprocessing import ILSVRC_MEAN_BGR

    log.warning("ILSVRC mean image not found (run `make models`, or set STL_SHARED); "
                "subtracting the per-channel mean %s instead", ILSVRC_MEAN_BGR.tolist())
    return ILSVRC_MEAN_BGR.copy()


def bvlc_paths(name: str) -> Tuple[Path, Path]:
    """(prototxt, caffemodel) of ``caffenet`` / ``alexnet``; ModelError if the weights are missing."""
    bvlc = BVLC_NAMES[name]
    prototxt = resources.deploy_prototxt(bvlc)
    caffemodel = weights_dir() / f"{bvlc}.caffemodel"
    if not prototxt.is_file():
        raise ModelError(f"{name}: prototxt {prototxt} is missing; run `make models` to write it")
    if not caffemodel.is_file():
        raise ModelError(f"{name}: weights {caffemodel} not found; run `make models` (needs internet) "
                         "or pass PROTOTXT:CAFFEMODEL")
    return prototxt, caffemodel


def squeezenet_paths() -> Tuple[Path, Path]:
    """(prototxt, caffemodel) of SqueezeNet v1.0, decoding the Deep Compression file on first use."""
    from .deep_compression import cached_caffemodel

    src = shared_dir() / "models" / "squeezenet_v1.0_deep_compression"
    net_file, prototxt = src / "compressed_SqueezeNet.net", src / "deploy.prototxt"
    if not (net_file.is_file() and prototxt.is_file()):
        raise ModelError(f"squeezenet: Deep Compression files not found in {src} "
                         "(set STL_SHARED to the directory holding models/squeezenet_v1.0_deep_compression)")
    return prototxt, cached_caffemodel(net_file, prototxt, cache_dir() / "squeezenet_v1.0.caffemodel")


def random_weights(prototxt, seed: int = 0, input_scale: float = 64.0):
    """Seeded He-scaled Gaussian weights (biases 0.01) for every parameterised layer of a net.

    The first layer is divided by ``input_scale`` (mean-subtracted pixels span about +-64..128)
    so that activations stay O(1) and the softmax is not saturated -- the random net then gives
    graded probabilities, which makes it a meaningful parity / benchmark model.
    """
    from .net import CaffeNetModule

    rng = np.random.default_rng(seed)
    weights = {}
    for li, (name, shapes) in enumerate(CaffeNetModule(prototxt).param_shapes().items()):
        blobs = []
        for i, shape in enumerate(shapes):
            if i == 0:
                fan_in = int(np.prod(shape[1:]))
                w = rng.standard_normal(shape, dtype=np.float32)
                w *= np.float32(np.sqrt(2.0 / fan_in) / (input_scale if li == 0 else 1.0))
                blobs.append(w)
            else:
                blobs.append(np.full(shape, 0.01, np.float32))
        weights[name] = blobs
    return weights


def caffenet_random_paths(seed: int = 0) -> Tuple[Path, Path]:
    """(prototxt, caffemodel) of CaffeNet with seeded random weights (written once, ~233 MB)."""
    from .io import write_caffemodel

    prototxt = resources.deploy_prototxt(BVLC_NAMES["caffenet"])
    if not prototxt.is_file():
        raise ModelError(f"caffenet_random: prototxt {prototxt} is missing; run `make models` to write it")
    out = cache_dir() / f"caffenet_random_v{RANDOM_WEIGHTS_VERSION}_seed{seed}.caffemodel"
    if not out.is_file():
        log.info("writing random CaffeNet weights to %s", out)
        write_caffemodel(out, prototxt, random_weights(prototxt, seed))
    return prototxt, out
