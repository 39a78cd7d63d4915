"""STL-CL, STL-WL (the paper's method) and the two trivial references
WHOLE-IMAGE and CENTER (not in the paper; added so every curve can be judged)."""
from __future__ import annotations

import hashlib
import weakref

import numpy as np

from ..core.config import DEFAULT
from ..core.localization import ImageContext, localize_batch
from ..errors import OptionError
from . import ProposalMethod, register_method


class STLMethod(ProposalMethod):
    """STL-CL (``class_level=True``: one hierarchy per ground-truth class, Sec. 3) or STL-WL
    (the top-5 classes of f(x))."""

    uses_classifier = True

    def __init__(self, classifier=None, config=DEFAULT, class_level: bool = False, progress=None):
        if classifier is None:
            raise ValueError("STL needs a classifier (build_method(..., classifier=build_classifier(...)))")
        if not class_level and getattr(classifier, "classes", None) is not None:
            try:
                config.check_classes(len(classifier.classes))
            except ValueError as e:
                raise OptionError(str(e)) from None
        self.classifier = classifier
        self.config = config
        self.needs_label = class_level
        self.name = "STL-CL" if class_level else "STL-WL"
        self.progress = progress

    def propose(self, image, labels=None, image_id=None):
        return self.propose_batch([image], [labels])[0]

    def propose_batch(self, images, labels=None, image_ids=None, on_done=None):
        wins = self.windows(images, labels, self.config, on_done=None if on_done is None else
                            (lambda i, w: on_done(i, (w.boxes, w.scores))))
        return [(w.boxes, w.scores) for w in wins]

    def windows(self, images, labels, config, on_done=None):
        """STL's :class:`~stl.core.localization.Windows` of ``images`` under ``config``; STL-CL
        needs the class label(s) of every image (the labels are ignored for STL-WL).

        The images' forward caches are shared with the previous call on the same classifier and
        config (:func:`shared_contexts`): STL-WL then STL-CL of one chunk compute the initial
        regions' masked images and crops once. ``on_done(i, windows)``: image i is finished."""
        if not self.needs_label:
            labels = [None] * len(images)
        elif labels is None or any(lab is None or (hasattr(lab, "__len__") and len(lab) == 0) for lab in labels):
            raise ValueError(f"{self.name} needs the class label(s) of every image")
        contexts = shared_contexts(self.classifier, images, config)
        return localize_batch(contexts, self.classifier, labels, config, self.progress, on_done=on_done)


#: classifier -> {image key: ImageContext} of the latest batch STL computed with it
_LATEST = weakref.WeakKeyDictionary()


def shared_contexts(classifier, images, config):
    """:class:`~stl.core.localization.ImageContext` of each image, reused from the previous batch of
    this classifier when the same pixels come back under the same config (every cached forward --
    f(x), masked images, crops -- is a pure function of those), new otherwise. Only the latest
    batch is kept, so memory stays one chunk's worth."""
    def key(im):
        a = np.ascontiguousarray(im)
        return (hashlib.blake2b(a.tobytes(), digest_size=16).hexdigest(), a.shape, a.dtype.str, repr(config))

    try:
        previous = _LATEST.get(classifier, {})
    except TypeError:  # a classifier that cannot be weakly referenced: no sharing
        return [ImageContext(im, classifier, config) for im in images]
    keys = [key(im) for im in images]
    contexts = [previous.get(k) or ImageContext(im, classifier, config) for k, im in zip(keys, images)]
    _LATEST[classifier] = dict(zip(keys, contexts))
    return contexts


@register_method("STL-CL", uses_classifier=True, needs_label=True)
def _stl_cl(classifier=None, config=DEFAULT, progress=None):
    return STLMethod(classifier, config, class_level=True, progress=progress)


@register_method("STL-WL", uses_classifier=True)
def _stl_wl(classifier=None, config=DEFAULT, progress=None):
    return STLMethod(classifier, config, class_level=False, progress=progress)


class WholeImage(ProposalMethod):
    """One window: the full image."""

    name = "WHOLE-IMAGE"

    def propose(self, image, labels=None, image_id=None):
        h, w = np.shape(image)[:2]
        return np.array([[0, 0, w - 1, h - 1]], np.float64), np.ones(1)


class CenterBox(ProposalMethod):
    """One window: centred, ``fraction`` (0.8) of the image's width and height."""

    name = "CENTER"

    def __init__(self, fraction: float = 0.8):
        self.fraction = fraction

    def propose(self, image, labels=None, image_id=None):
        h, w = np.shape(image)[:2]
        bw, bh = self.fraction * w, self.fraction * h
        x0, y0 = (w - bw) / 2.0, (h - bh) / 2.0
        return np.array([[x0, y0, x0 + bw - 1, y0 + bh - 1]], np.float64), np.ones(1)


register_method("WHOLE-IMAGE")(WholeImage)
register_method("CENTER")(CenterBox)
