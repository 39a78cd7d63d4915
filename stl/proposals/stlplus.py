"""STL+-CL and STL+-WL: STL's windows with the top 10 re-ranked by :mod:`stl.wsol.stlplus`
(not in the paper; issue "STL on the WSOL benchmark")."""
from __future__ import annotations

from ..core.config import DEFAULT
from . import register_method
from .stl_methods import STLMethod


class STLPlusMethod(STLMethod):
    """STL (:class:`~stl.proposals.stl_methods.STLMethod`) with its top windows re-ranked."""

    def __init__(self, classifier=None, config=DEFAULT, plus=None, class_level: bool = False, progress=None):
        from ..wsol.stlplus import frozen_weights

        super().__init__(classifier, config, class_level, progress)
        self.name = "STL+-CL" if class_level else "STL+-WL"
        self.stl_config = config
        self.plus = plus or frozen_weights(self.name)  # stl wsol --freeze-plus
        self.config = _Identity(config, self.plus)  # what a stored run records

    def propose_batch(self, images, labels=None, image_ids=None, on_done=None):
        """STL's windows of the whole batch, then each image re-ranked (``on_done(i, result)``
        after each re-ranking: the STL part is shared by the batch, so images finish only then)."""
        from ..wsol.stlplus import rerank, target_classes_for, window_features

        wins = self.windows(images, labels, self.stl_config)
        if not self.needs_label:
            labels = [None] * len(images)
        out = []
        for k, (im, lab, w) in enumerate(zip(images, labels, wins)):
            lab = (lab[0] if isinstance(lab, (list, tuple)) else lab) if self.needs_label else None
            feats = window_features(self.classifier, im, w.boxes, w.scores,
                                    target_classes_for(self.classifier, im, lab, self.stl_config.wl_top_classes),
                                    self.plus.top_k, self.plus.heatmap_rule)
            boxes, scores, _ = rerank(w.boxes, w.scores, feats, self.plus)
            out.append((boxes, scores))
            if on_done is not None:
                on_done(k, out[-1])
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
