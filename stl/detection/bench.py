"""Measure the cost drivers of the detector experiments and project the full-size run time.

    stl bench --detection [--model efficientnet_lite0] [--device cpu] [--windows 256]
                          [--svm-examples 5000] [--config stl/resources/configs/detection_ilsvrc200.json]

Measures (1) window-feature extraction -- crop + warp to the input size +
classifier FEATURE -- in windows per second, on real images (../shared) with
random windows, and (2) one LinearSVC fit (hinge, dual, balanced) on
``--svm-examples`` examples of the feature's dimension; then prints the
projected time of the paper-size configuration (docs/detection.md explains the
arithmetic). The numbers depend on the machine and its load: the load average
is printed with them.
"""
from __future__ import annotations

import time

import numpy as np


def measure_features(classifier, images, n_windows: int = 256, batch_size: int = 64, seed: int = 0) -> dict:
    from .features import extract_window_features, warp_crop

    rng = np.random.default_rng(seed)
    jobs = []
    for k in range(n_windows):
        img = images[k % len(images)]
        h, w = img.shape[:2]
        x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        x1, y1 = int(rng.integers(x0 + 8, w)), int(rng.integers(y0 + 8, h))
        jobs.append((k % len(images), (x0, y0, x1, y1)))
    # warm-up
    extract_window_features(classifier, images[0], [jobs[0][1]] * min(batch_size, 8), 0, batch_size)
    t = time.time()
    crops = [warp_crop(images[i], b, tuple(classifier.input_size)) for i, b in jobs]
    t_warp = time.time() - t
    t = time.time()
    by_image = {}
    for i, b in jobs:
        by_image.setdefault(i, []).append(b)
    n = 0
    for i, boxes in by_image.items():
        n += len(extract_window_features(classifier, images[i], boxes, 0, batch_size))
    t_all = time.time() - t
    del crops
    return {"windows": n, "warp_windows_per_s": round(n_windows / t_warp, 1),
            "windows_per_s": round(n / t_all, 2), "batch_size": batch_size}


def measure_svm(n: int, dim: int, seed: int = 0) -> dict:
    from .config import SVMConfig
    from .svm import _fit_quiet, build_svm

    rng = np.random.default_rng(seed)
    npos = max(n // 40, 10)
    x = np.abs(rng.standard_normal((n, dim))).astype(np.float32)
    x[:npos] += 0.3 * np.abs(rng.standard_normal(dim)).astype(np.float32)
    y = -np.ones(n, int)
    y[:npos] = 1
    out = {}
    for c in (1e-3, 1e-1, 10.0):
        t = time.time()
        _fit_quiet(build_svm(c, SVMConfig(), seed), x, y)
        out[str(c)] = round(time.time() - t, 2)
    return {"examples": n, "dim": dim, "fit_seconds_by_C": out}


def project(cfg, feat_rate: float, svm_fit_s: float, dim: int, windows_by_method=None) -> dict:
    """Full-size time and disk for Table 1 + Table 2 + Fig. 6 (see docs/detection.md)."""
    d = cfg.data
    n_cls = d.num_classes or 200
    n_train = n_cls * d.train_positives_per_class
    n_test = n_cls * d.test_images_per_class
    wpi = windows_by_method or {"SELSEARCH": cfg.max_windows_per_image, "BING": cfg.max_windows_per_image,
                                "EDGEBOXES": cfg.max_windows_per_image, "MCG": cfg.max_windows_per_image,
                                "STL-WL": 300}
    feats = {m: (n_train + n_test) * w for m, w in wpi.items()}
    feats["positives (top-3 of 4 methods + GT)"] = n_train * (3 * 4 + 1)
    total_windows = sum(feats.values())
    c_fits = len(cfg.svm.c_grid) * cfg.svm.folds + 1
    pairs = 9  # distinct pairs of Table 1 (6) + Table 2 (3 more; Fig. 6 reuses Table 2)
    svm_s = pairs * n_cls * cfg.iterations * c_fits * svm_fit_s
    return {"classes": n_cls, "train_images": n_train, "test_images": n_test, "windows_by_method": feats,
            "total_windows": total_windows, "feature_hours": round(total_windows / feat_rate / 3600, 1),
            "feature_disk_GB": round(total_windows * dim * (2 if cfg.features.dtype == "float16" else 4) / 1e9, 1),
            "svm_fits": pairs * n_cls * cfg.iterations * c_fits, "svm_hours": round(svm_s / 3600, 1)}
