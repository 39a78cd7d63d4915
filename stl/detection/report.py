"""Tables 1-2 and Figure 6: our numbers next to the published ones.

The published numbers live in ``stl/resources/reference/detection_reference.json``
(Table 1/2 mAPs, the Fig. 6 count, and the per-class APs of every pair,
ordered like the paper's 200 classes). Besides the paper's mAP over its 200
classes, every table gives the paper's mean AP over the classes WE ran
("paper, same classes"), the fair comparison for a run on fewer classes.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .. import resources

DEFAULT_REFERENCE = resources.path(*resources.DETECTION_REFERENCE)

TABLE1_PAIRS = ("BING+BING", "EDGEBOXES+EDGEBOXES", "MCG+MCG", "SELSEARCH+SELSEARCH", "STLCL+STLWL",
                "GROUNDTRUTH+SELSEARCH")
TABLE2_PAIRS = ("BING+SELSEARCH", "SELSEARCH+SELSEARCH", "STLCL+SELSEARCH", "GROUNDTRUTH+SELSEARCH",
                "STLCL(top-1)+SELSEARCH")
FIG6_PAIRS = ("GROUNDTRUTH+SELSEARCH", "STLCL+SELSEARCH")


def load_reference(path=None) -> dict:
    p = Path(path or os.environ.get("STL_DETECTION_REFERENCE") or DEFAULT_REFERENCE)
    return json.loads(p.read_text())


def paper_class_aps(ref: dict, pair: str) -> Dict[str, float]:
    vals = ref.get("per_class_ap", {}).get(pair)
    if vals is None:
        return {}
    return {c: float(v) for c, v in zip(ref["classes"], vals)}


def class_name(ref: dict, wnid: str) -> str:
    try:
        return ref["descriptions"][ref["classes"].index(wnid)].split(",")[0].strip()
    except (ValueError, KeyError, IndexError):
        from ..models.base import ClassList

        cl = ClassList.imagenet()
        try:
            return cl.words[cl.index(wnid)].split(",")[0].strip()
        except KeyError:
            return wnid


def pct(v, signed=False) -> str:
    if v is None or not np.isfinite(v):
        return "--"
    return f"{100 * v:+.2f}" if signed else f"{100 * v:.2f}"


def _mean(vals) -> float:
    vals = [v for v in vals if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def table_rows(results: Dict[str, "object"], pairs: Sequence[str], table_key: str, ref: dict) -> List[dict]:
    """One row per pair: ours, paper (200 classes), paper on our classes, differences, status."""
    rows = []
    published = ref["tables"].get(table_key, {})
    for pair in pairs:
        r = results.get(pair)
        paper = published.get(pair)
        paper = paper / 100.0 if paper is not None else float("nan")
        pca = paper_class_aps(ref, pair)
        row = {"pair": pair, "paper_mAP": paper, "status": "not run", "reason": "", "ours_mAP": float("nan"),
               "paper_same_classes_mAP": float("nan"), "classes": 0}
        if r is not None:
            row["status"], row["reason"] = r.status, r.reason
            if r.status == "ok":
                row["ours_mAP"] = r.mean_ap
                row["classes"] = sum(1 for v in r.aps.values() if np.isfinite(v))
                row["paper_same_classes_mAP"] = _mean([pca.get(c) for c, v in r.aps.items() if np.isfinite(v)])
        row["diff_vs_paper"] = row["ours_mAP"] - paper
        row["diff_vs_paper_same_classes"] = row["ours_mAP"] - row["paper_same_classes_mAP"]
        rows.append(row)
    return rows


def table_markdown(rows: List[dict], title: str, note: str = "") -> str:
    out = [f"## {title}", ""]
    if note:
        out += [note, ""]
    out += ["| positive boxes + negative/test boxes | ours mAP (%) | paper mAP (%) | ours - paper | "
            "paper, same classes (%) | ours - paper (same classes) | classes | status |",
            "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        status = "ok" if r["status"] == "ok" else f"**NOT RUN**: {r['reason']}"
        out.append(f"| {r['pair']} | {pct(r['ours_mAP'])} | {pct(r['paper_mAP'])} | "
                   f"{pct(r['diff_vs_paper'], True)} | {pct(r['paper_same_classes_mAP'])} | "
                   f"{pct(r['diff_vs_paper_same_classes'], True)} | {r['classes']} | {status} |")
    return "\n".join(out) + "\n"


def rows_csv(rows: List[dict], columns: Optional[Sequence[str]] = None) -> str:
    columns = list(columns or rows[0].keys()) if rows else list(columns or [])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6f}" if isinstance(v, float) and np.isfinite(v) else ("" if isinstance(v, float)
                                                                                      else v))
                    for k, v in r.items()})
    return buf.getvalue()


def per_class_rows(results: Dict[str, "object"], pairs: Sequence[str], ref: dict) -> List[dict]:
    """One row per (pair, class) with our AP and the paper's."""
    rows = []
    for pair in pairs:
        r = results.get(pair)
        if r is None or r.status != "ok":
            continue
        pca = paper_class_aps(ref, pair)
        for c, ap in r.aps.items():
            p = pca.get(c, float("nan"))
            d = r.details.get(c, {})
            rows.append({"pair": pair, "wnid": c, "class": class_name(ref, c), "ours_AP": ap, "paper_AP": p,
                         "diff": ap - p, "gt_boxes": d.get("gt_boxes", ""), "C": d.get("C", ""),
                         "positives": d.get("positives", ""), "negatives": d.get("negatives", "")})
    return rows


def best_worst(aps: Dict[str, float], best: int = 10, worst: int = 5):
    items = sorted(((c, v) for c, v in aps.items() if v is not None and np.isfinite(v)), key=lambda t: (-t[1], t[0]))
    if len(items) <= best + worst:
        return items, []
    return items[:best], items[-worst:][::-1]


def table2_markdown(rows: List[dict], results: Dict[str, "object"], ref: dict, note: str = "") -> str:
    out = [table_markdown(rows, "Table 2: mAP (ILSVRC-2012-LOC-200 protocol), test boxes = SELSEARCH", note)]
    out.append("## Table 2: best-10 and worst-5 classes of each pair\n")
    out.append("AP in %. `ours`: over the classes of this run (15 classes or fewer: all of them, "
               "best first); `paper`: over the paper's 200 classes.\n")
    for r in rows:
        pair = r["pair"]
        res = results.get(pair)
        out.append(f"### {pair}\n")
        pca = paper_class_aps(ref, pair)
        pb, pw = best_worst(pca)
        if res is not None and res.status == "ok":
            ob, ow = best_worst(res.aps)
            out.append("ours, best: " + ", ".join(f"{class_name(ref, c)} {pct(v)} (paper {pct(pca.get(c))})"
                                                  for c, v in ob))
            if ow:
                out.append("\nours, worst: " + ", ".join(f"{class_name(ref, c)} {pct(v)} (paper {pct(pca.get(c))})"
                                                         for c, v in ow))
        else:
            out.append(f"ours: **NOT RUN** ({r['reason']})")
        if pb:
            out.append("\npaper, best: " + ", ".join(f"{class_name(ref, c)} {pct(v)}" for c, v in pb))
            out.append("\npaper, worst: " + ", ".join(f"{class_name(ref, c)} {pct(v)}" for c, v in pw))
        out.append("")
    return "\n".join(out) + "\n"


def fig6_counts(x_aps: Dict[str, float], y_aps: Dict[str, float]):
    common = [c for c in x_aps if c in y_aps and np.isfinite(x_aps[c]) and np.isfinite(y_aps[c])]
    above = sum(1 for c in common if y_aps[c] > x_aps[c])
    return common, above


def plot_fig6(ours_x: Dict[str, float], ours_y: Dict[str, float], paper_x: Dict[str, float],
              paper_y: Dict[str, float], title: str = ""):
    """Per-class AP scatter: GROUNDTRUTH+SELSEARCH (x) vs STLCL+SELSEARCH (y), paper's points in grey."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.6, 5.6))
    ax = fig.subplots()
    pc, pa = fig6_counts(paper_x, paper_y)
    if pc:
        ax.scatter([100 * paper_x[c] for c in pc], [100 * paper_y[c] for c in pc], s=14, c="#bbbbbb",
                   label=f"paper ({pa} of {len(pc)} classes above)", zorder=1)
    oc, oa = fig6_counts(ours_x, ours_y)
    if oc:
        ax.scatter([100 * ours_x[c] for c in oc], [100 * ours_y[c] for c in oc], s=26, c="#d62728",
                   label=f"ours ({oa} of {len(oc)} classes above)", zorder=3)
    vals = [v for d in (ours_x, ours_y, paper_x, paper_y) for v in d.values() if np.isfinite(v)]
    top = min(100.0, max(10.0, 10 * np.ceil(100 * max(vals, default=0.5) * 1.05 / 10)))
    ax.plot([0, top], [0, top], "k--", lw=0.8, zorder=2)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_aspect("equal")
    ax.set_xlabel("AP (%), trained on ground-truth boxes\n(GROUNDTRUTH+SELSEARCH)")
    ax.set_ylabel("AP (%), trained on STL-CL boxes\n(STLCL+SELSEARCH)")
    ax.legend(loc="upper left", fontsize=8)
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig
