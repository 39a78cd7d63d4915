"""The ``stl wsol`` report: the table beside the published numbers.
"""
from __future__ import annotations

import logging
import math
from typing import Dict, List



log = logging.getLogger("stl.experiments.wsol")


#: wsolevaluation's published ImageNet numbers (Choe et al., CVPR 2020, Table 3 / Sec. 5), on
#: the full 50,000-image ILSVRC val with other backbones -- for orientation, not comparable
#: image for image. MaxBoxAccV2 (%).
PUBLISHED = [
    ("CAM (VGG16)", "VGG16", 60.0),
    ("CAM (InceptionV3)", "InceptionV3", 63.4),
    ("CAM (ResNet50)", "ResNet50", 63.7),
    ("best WSOL method, mean over backbones", "3 backbones", 62.6),
    ("few-shot learning baseline (fully supervised, few boxes)", "3 backbones", 64.0),
    ("centre-gaussian baseline (no learning)", "--", 52.5),
]

ORDER = ("STL-CL", "STL-WL", "STL+-CL", "STL+-WL", "STL-CL-HEAT", "STL-WL-HEAT", "CAM", "GRAD-CAM", "RISE",
         "WHOLE-IMAGE", "CENTER")
KIND = {"STL-CL": "box", "STL-WL": "box", "STL+-CL": "box", "STL+-WL": "box", "WHOLE-IMAGE": "box",
        "CENTER": "box", "STL-CL-HEAT": "heatmap", "STL-WL-HEAT": "heatmap", "CAM": "heatmap",
        "GRAD-CAM": "heatmap", "RISE": "heatmap"}


def _fmt(v) -> str:
    return "--" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


def _fmt_diff(d) -> str:
    star = "*" if d["low"] > 0 or d["high"] < 0 else ""
    return f"{100 * d['diff']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]{star}"


def _fmt_iv(r: dict, key: str, scale: float = 1.0, bold: bool = False) -> str:
    """``r[key]`` (times ``scale``), with its interval ``[low, high]`` when ``r`` has one."""
    v = r[key]
    text = _fmt(None if v is None else v * scale)
    if bold:
        text = f"**{text}**"
    iv = (r.get("intervals") or {}).get(key)
    if iv is not None and text.strip("*") != "--":
        text += f" [{_fmt(iv['low'] * scale)}, {_fmt(iv['high'] * scale)}]"
    return text


def _table(rows: Dict[str, dict], backbone: str) -> List[str]:
    lines = ["| method | kind | backbone | images | Top-1 Loc | GT-known Loc | MaxBoxAcc | MaxBoxAccV2 | "
             "@IoU0.3 | @IoU0.5 | @IoU0.7 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in sorted(rows, key=lambda k: ORDER.index(k) if k in ORDER else 99):
        r = rows[m]
        if not r.get("images"):
            continue
        bb = "--" if m in ("WHOLE-IMAGE", "CENTER") else backbone
        lines.append(f"| {m} | {KIND.get(m, '?')} | {bb} | {r['images']} | {_fmt_iv(r, 'top1_loc')} | "
                     f"{_fmt_iv(r, 'gt_known_loc')} | {_fmt_iv(r, 'max_box_acc')} | "
                     f"{_fmt_iv(r, 'max_box_acc_v2', bold=True)} | {_fmt_iv(r, 'max_box_acc_iou30')} | "
                     f"{_fmt_iv(r, 'max_box_acc_iou50')} | {_fmt_iv(r, 'max_box_acc_iou70')} |")
    return lines


def format_report(rep: dict) -> str:
    bb = rep["model"]
    lines = [f"WSOL benchmark (wsolevaluation's metrics) on {rep['dataset']}; classifier {rep['classifier']}.",
             f"Score maps for the ground-truth class; thresholds 0.00..0.99 step 0.01; 224x224 frame. "
             f"RISE: N={rep['rise']['num_masks']} masks (grid {rep['rise']['grid']}, p {rep['rise']['p']}). "
             f"STL heatmap rule: {rep['stl_heatmap_rule']}."]
    if rep.get("ci"):
        c = rep["ci"]
        lines.append(f"[low, high]: {100 * c['level']:g}% per-image bootstrap interval (percentile method, "
                     f"{c['resamples']} resamples, seed {c['seed']}; every metric, its max over thresholds "
                     f"included, recomputed on each resample).")
    lines.append("")
    lines += ["All images each method has:", ""] + _table(rep["methods"], bb)
    for a, b, c in PUBLISHED:
        lines.append(f"| {a} [published, wsolevaluation] | heatmap | {b} (other backbone) | 50000 | | | | **{c}** "
                     "| | | |")
    if rep.get("methods_on_stl_images"):
        n = rep["stl_images"]
        lines += ["", f"The same methods on the {n} images that have STL windows "
                      f"({rep['stl_images_by_half'][0]} from the first half, {rep['stl_images_by_half'][1]} "
                      f"from the second):", ""] + _table(rep["methods_on_stl_images"], bb)
    paired_cam = {m: d for m, d in (rep.get("paired_vs_cam") or {}).items() if d}
    if paired_cam:
        k = next(iter(next(iter(paired_cam.values())).values()))["images"]
        lines += ["", f"Paired difference to CAM (same backbone) on the same {k} STL images (points; per-image "
                      "bootstrap, the same draws for both; * = the interval excludes 0):", "",
                  "| method - CAM | MaxBoxAccV2 | MaxBoxAcc | Top-1 Loc |", "|---|---|---|---|"]
        for m in sorted(paired_cam, key=lambda k_: ORDER.index(k_) if k_ in ORDER else 99):
            d = paired_cam[m]
            lines.append(f"| {m} | " + " | ".join(_fmt_diff({kk: v / 100.0 for kk, v in d[f].items()})
                                                  for f in ("max_box_acc_v2", "max_box_acc", "top1_loc")) + " |")
    for h, title in (("half1", "first half (STL+ weights selected here)"),
                     ("half2", "second half (STL+ reported here)")):
        rows = rep["protocol"].get(h) or {}
        if not rows:
            lines += ["", f"Paper's protocol, {title}: no STL images."]
            continue
        k = next(iter(rows.values()))["images"]
        lines += ["", f"Paper's protocol (IoU >= 0.5, mean over classes), STL images of the {title}, {k} images:", "",
                  "| method | top-1 hit rate | recall@1 | recall@5 | recall@10 |", "|---|---|---|---|---|"]
        for m in sorted(rows, key=lambda k_: ORDER.index(k_) if k_ in ORDER else 99):
            r = rows[m]
            lines.append(f"| {m} | {_fmt_iv(r, 'top1_hit_rate', 100)}% | {_fmt_iv(r, 'recall@1', 100)}% | "
                         f"{_fmt_iv(r, 'recall@5', 100)}% | {_fmt_iv(r, 'recall@10', 100)}% |")
        paired = {m: r["paired_vs_center"] for m, r in rows.items() if r.get("paired_vs_center")}
        if paired:
            lines += ["", f"Paired difference to CENTER on the same {k} images (points; per-image bootstrap, "
                          "the same draws for both; * = the interval excludes 0):", "",
                      "| method - CENTER | top-1 hit rate | recall@1 | recall@5 | recall@10 |", "|---|---|---|---|---|"]
            for m in sorted(paired, key=lambda k_: ORDER.index(k_) if k_ in ORDER else 99):
                lines.append(f"| {m} | " + " | ".join(_fmt_diff(paired[m][f]) for f in
                                                       ("top1_hit_rate", "recall@1", "recall@5", "recall@10")) + " |")
    for name, p in rep.get("stlplus", {}).items():
        c = p["config"]
        how = (f"selected on {p['selected_on_images']} first-half images" if p["selected"]
               else "given (not selected in this run)")
        lines.append(f"\n{name}: alpha={c['alpha']} beta={c['beta']} gamma={c['gamma']} top_k={c['top_k']} ({how}).")
    lines += [""] + [f"Note: {n}" for n in rep.get("notes", [])]
    lines.append("Published rows: Choe et al., CVPR 2020 (wsolevaluation), full ILSVRC val, VGG16 / InceptionV3 / "
                 "ResNet50 backbones trained for WSOL -- orientation only, not the same images or classifier.")
    return "\n".join(lines)
