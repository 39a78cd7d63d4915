"""Any ``torch.nn.Module`` image classifier as an STL :class:`~stl.models.base.Classifier`.

``TorchClassifier(module, input_size, mean, std, classes=..., feature=...)`` wraps a module that
maps a normalised NCHW float batch ``(x - mean) / std`` (RGB) to class logits ``(N, C)``:

* ``mean`` / ``std``: 1 or 3 RGB values in 0..255 pixel units, or both as fractions of 255
  (torchvision's ``(0.485, 0.456, 0.406)`` / ``(0.229, 0.224, 0.225)``;
  :func:`stl.models.preprocessing.pixel_values`). The mask colour g of Eq. 1 is the mean pixel
  (what the network sees as 0).
* ``feature`` (the feature of s_app, Eq. 3): ``None`` -- the INPUT of the module's last
  ``nn.Linear`` (registration order; for CNNs the pooled penultimate feature: Lite0's 1280-d
  vector, torchvision ResNet's 2048-d ``avgpool`` output); or the dotted name of a submodule,
  whose OUTPUT is taken (flattened per image). Both through forward hooks; the module itself is
  not changed.
* ``device`` cpu / cuda[:N], ``precision`` fp32 / bf16 / fp16 and ``channels_last`` as the built-in
  engines (:class:`stl.models.torch_runtime.TorchRuntime`).

``--model package.module:factory`` (:func:`classifier_from_factory`) calls ``factory()``, which
returns either a :class:`~stl.models.base.Classifier`, or ``(module, preprocessing)`` with
``preprocessing`` a dict of this class's arguments (``input_size``, ``mean``, ``std``, optionally
``classes``, ``feature``, ``name``). Options given on the command line (``--classes --mean --std
--input-size``) override the factory's. Example (torchvision is not a dependency of stl)::

    # mymodels.py
    def resnet50():
        import torchvision
        net = torchvision.models.resnet50(weights="IMAGENET1K_V2")
        return net, {"input_size": 224, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}

    stl localize photo.jpg --model mymodels:resnet50
"""
from __future__ import annotations

import importlib
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from .base import FEATURE, LOGITS, PROB, Classifier, ClassList, ModelError
from .preprocessing import pixel_values
from .torch_runtime import TorchRuntime


def last_linear(module: torch.nn.Module) -> str:
    """The dotted name of the last ``nn.Linear`` submodule (registration order)."""
    names = [n for n, m in module.named_modules() if isinstance(m, torch.nn.Linear)]
    if not names:
        raise ModelError(f"{type(module).__name__} has no nn.Linear layer: give feature=<submodule name> "
                         f"(the layer whose output is the feature of s_app)")
    return names[-1]


class TorchClassifier(Classifier):
    """A torch module classifier (see the module docstring).

    Parameters
    ----------
    module : torch.nn.Module
        Normalised NCHW RGB batch -> logits (N, C). Put in eval mode.
    input_size : int or (H, W)
    mean, std : 1 or 3 numbers (RGB; 0..255, or fractions of 255).
    classes : ClassList, synset_words.txt path, or None (ImageNet's for 1000 outputs, else ``class_i``).
    feature : None (input of the last nn.Linear) or a submodule name (its output).
    device, precision, channels_last : as :class:`~stl.models.torch_runtime.TorchRuntime`.
    name : str, optional
    batch_size : images per forward STL sends (default 4 on CPU, 64 on CUDA).
    """

    def __init__(self, module: torch.nn.Module, input_size, mean, std, classes=None, feature: Optional[str] = None,
                 device: str = "cpu", precision: str = "fp32", channels_last: bool = False,
                 name: Optional[str] = None, batch_size: Optional[int] = None):
        if not isinstance(module, torch.nn.Module):
            raise ModelError(f"TorchClassifier wraps a torch.nn.Module, not {type(module).__name__}")
        hw = (int(input_size), int(input_size)) if np.ndim(input_size) == 0 else tuple(int(v) for v in input_size)
        if len(hw) == 1:
            hw = (hw[0], hw[0])
        if len(hw) != 2 or min(hw) < 1:
            raise ModelError(f"input_size: give H W (or one side), not {input_size!r}")
        self.input_size = hw
        self.mean, self.std = pixel_values(mean, std)
        self.mask_color = self.mean.copy()
        self.runtime = TorchRuntime(device, precision, channels_last)
        self.net = self.runtime.prepare_module(module)
        self.device = str(self.runtime.device)
        self.name = name or type(module).__name__
        self._mean = self.mean.reshape(1, 3, 1, 1)
        self._std = self.std.reshape(1, 3, 1, 1)
        # the feature hook
        subs = dict(self.net.named_modules())
        if feature is None:
            fname = last_linear(self.net)
            self.feature_name = f"input of {fname} (the last nn.Linear)"
            take_input = True
        else:
            if feature not in subs:
                raise ModelError(f"feature={feature!r}: no such submodule of {type(module).__name__} (e.g. "
                                 f"{', '.join(list(n for n in subs if n)[-5:])})")
            fname, take_input = feature, False
            self.feature_name = f"output of {feature}"
        self._captured: Dict[str, torch.Tensor] = {}

        def hook(mod, inputs, output):
            t = inputs[0] if take_input else output
            self._captured["feature"] = t

        self._hook = subs[fname].register_forward_hook(hook)
        self.preferred_batch_size = int(batch_size or (64 if self.runtime.device.type == "cuda" else 4))
        with torch.inference_mode():  # the number of classes from one probe image
            z = self._logits(np.zeros((1, *hw, 3), np.float32))
        if z.ndim != 2:
            raise ModelError(f"{self.name}: the module returns shape {tuple(z.shape)} for one image, not "
                             f"(1, classes); not a classifier")
        self.classes = ClassList.resolve(classes, int(z.shape[1]))
        if len(self.classes) != z.shape[1]:
            raise ModelError(f"{self.name}: {z.shape[1]} class scores but the class list has {len(self.classes)}")

    def _logits(self, images: np.ndarray) -> torch.Tensor:
        x = (np.asarray(images, np.float32).transpose(0, 3, 1, 2) - self._mean) / self._std
        x = self.runtime.to_tensor(x)
        self._captured.clear()
        with self.runtime.autocast():
            out = self.net(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out

    @torch.inference_mode()
    def forward(self, images: np.ndarray, outputs: Sequence[str] = (PROB, FEATURE)) -> Dict[str, np.ndarray]:
        logits = self._logits(images)
        res = {}
        if FEATURE in outputs:
            feat = self._captured.get("feature")
            if feat is None:
                raise ModelError(f"{self.name}: the feature layer ({self.feature_name}) did not run in forward()")
            res[FEATURE] = self.runtime.to_numpy(torch.flatten(feat, 1))
        if LOGITS in outputs:
            res[LOGITS] = self.runtime.to_numpy(logits)
        if PROB in outputs:
            res[PROB] = self.runtime.to_numpy(torch.softmax(logits.float(), dim=1))
        return res


def load_factory(spec: str):
    """``package.module:function`` -> the function (ModelError naming the spec if it cannot be imported)."""
    import os
    import sys

    mod_name, _, fn_name = spec.partition(":")
    try:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:  # a module in the working directory (the `stl` script omits it)
            if e.name != mod_name.split(".")[0] or os.getcwd() in sys.path:
                raise
            sys.path.insert(0, os.getcwd())
            mod = importlib.import_module(mod_name)
    except Exception as e:  # noqa: BLE001 - any import-time error is the user's module
        raise ModelError(f"--model {spec}: cannot import {mod_name} ({type(e).__name__}: {e})") from None
    fn = getattr(mod, fn_name, None)
    if not callable(fn):
        raise ModelError(f"--model {spec}: {mod_name} has no function {fn_name}")
    return fn


def classifier_from_factory(spec: str, device: str = "cpu", precision: str = "fp32", classes=None, mean=None,
                            std=None, input_size=None, threads=None, **kw) -> Classifier:
    """The classifier of ``--model package.module:factory`` (see the module docstring)."""
    fn = load_factory(spec)
    try:
        made = fn()
    except Exception as e:  # noqa: BLE001 - the factory is the user's code
        raise ModelError(f"--model {spec}: the factory raised {type(e).__name__}: {e}") from None
    if isinstance(made, Classifier):
        if any(v is not None for v in (classes, mean, std, input_size)):
            raise ModelError(f"--model {spec}: the factory returns a Classifier; --classes/--mean/--std/--input-size "
                             f"do not apply")
        return made
    if isinstance(made, dict) and "module" in made:
        made = (made["module"], {k: v for k, v in made.items() if k != "module"})
    if not (isinstance(made, (tuple, list)) and len(made) == 2 and isinstance(made[1], dict)):
        raise ModelError(f"--model {spec}: the factory must return a Classifier or (module, preprocessing dict), "
                         f"not {type(made).__name__}")
    module, pre = made
    pre = dict(pre)
    for k, v in (("classes", classes), ("mean", mean), ("std", std), ("input_size", input_size)):
        if v is not None:
            pre[k] = v
    missing_keys = [k for k in ("input_size", "mean", "std") if pre.get(k) is None]
    if missing_keys:
        raise ModelError(f"--model {spec}: no {', '.join(missing_keys)} (return them from the factory or give "
                         f"--{' --'.join(k.replace('_', '-') for k in missing_keys)})")
    unknown = set(pre) - {"input_size", "mean", "std", "classes", "feature", "name", "batch_size", "channels_last"}
    if unknown:
        raise ModelError(f"--model {spec}: unknown preprocessing key(s) {', '.join(sorted(unknown))}")
    pre.setdefault("name", spec)
    return TorchClassifier(module, device=device, precision=precision, **pre, **kw)


__all__ = ["TorchClassifier", "classifier_from_factory", "load_factory", "last_linear"]
