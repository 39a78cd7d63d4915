"""Classifier engines and the model registry.

``build_classifier(name, engine=..., device=..., precision=...)`` is the one
factory. ``name`` is a registry name (``efficientnet_lite0``, ``caffenet``,
``alexnet``, ``squeezenet``, ``caffenet_random``) or a pair
``PROTOTXT CAFFEMODEL`` given as ``"path/deploy.prototxt:path/model.caffemodel"``
(or a tuple). Register more with :func:`register_model`.
"""
from __future__ import annotations

from .base import FEATURE, LOGITS, PROB, Classifier, ClassList, ModelError  # noqa: F401
from .zoo import (ENGINES, MODELS, available_models, build_caffe_classifier, build_classifier, model_traits,  # noqa: F401
                  register_model)
