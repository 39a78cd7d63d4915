"""STL+-CL and STL+-WL: STL's windows with the top 10 re-ranked by :mod:`stl.wsol.stlplus`
(not in the paper; issue "STL on the WSOL benchmark")."""
from __future__ import annotations

from ..core.config import DEFAULT
from ..core.localization import localize_batch
from . import ProposalMethod, register_method


class STLPlusMethod(ProposalMethod):
    uses_classifier = True

    def __init__(self, classifier=None, config=DEFAULT, plus=None, class_level: bool = False, progress=None):
        from ..wsol.stlplus import STLPlusConfig

        if classifier is None:
            raise ValueError("STL+ needs a classifier (build_method(..., classifier=build_classifier(...)))")
        self.classifier = classifier
        self.stl_config = config
        self.plus = plus or STLPlusConfig()
        self.config = _Identity(config, self.plus)
        self.needs_label = class_level
        self.name = "STL+-CL" if class_level else "STL+-WL"
        self.progress = progress

    def propose(self, image, labels=None, image_id=None):
        return self.propose_batch([image], [labels])[0]

    def propose_batch(self, images, labels=None, image_ids=None):
        from ..wsol.stlplus import rerank, target_classes_for, window_features

        if not self.needs_label:
            labels = [None] * len(images)
        elif labels is None or any(lab is None or (hasattr(lab, "__len__") and len(lab) == 0) for lab in labels):
            raise ValueError("STL+-CL needs the class label(s) of every image")
        wins = localize_batch(images, self.classifier, labels, self.stl_config, self.progress)
        out = []
        for im, lab, w in zip(images, labels, wins):
            lab = (lab[0] if isinstance(lab, (list, tuple)) else lab) if self.needs_label else None
            feats = window_features(self.classifier, im, w.boxes, w.scores,
                                    target_classes_for(self.classifier, im, lab, self.stl_config.wl_top_classes),
                                    self.plus.top_k, self.plus.heatmap_rule)
            boxes, scores, _ = rerank(w.boxes, w.scores, feats, self.plus)
            out.append((boxes, scores))
        return out


class _Identity:
    """What a stored run records as the method's configuration: STL's and STL+'s."""

    def __init__(self, stl, plus):
        self.stl, self.plus = stl, plus

    def identity(self):
        stl = self.stl.identity() if hasattr(self.stl, "identity") else str(self.stl)
        return {"stl": stl, "plus": self.plus.identity()}


@register_method("STL+-CL", uses_classifier=True, needs_label=True)
def _stlplus_cl(classifier=None, config=DEFAULT, plus=None, progress=None):
    return STLPlusMethod(classifier, config, plus, class_level=True, progress=progress)


@register_method("STL+-WL", uses_classifier=True)
def _stlplus_wl(classifier=None, config=DEFAULT, plus=None, progress=None):
    return STLPlusMethod(classifier, config, plus, class_level=False, progress=progress)
