"""Tables: ours vs the paper, and all methods side by side (Markdown / CSV)."""
from __future__ import annotations

import csv
import io
import math
from typing import Dict, List, Optional, Sequence

from .protocol import EvalResult
from .reference import paper_value

#: N at which the ours-vs-paper table is printed
COMPARE_N = (1, 3, 10, 100, 1000)


def _fmt(v, pct=True, signed=False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if pct:
        return f"{100 * v:+.1f}" if signed else f"{100 * v:.1f}"
    return f"{v:+.4f}" if signed else f"{v:.4f}"


def comparison_rows(result: EvalResult, method: str, paper_key: Optional[str], ns: Sequence[int] = COMPARE_N,
                    ref: Optional[dict] = None) -> List[dict]:
    """One row per N: ours, paper and ours - paper for mean recall and precision."""
    rows = []
    for n in ns:
        if int(n) not in list(result.num_windows):
            continue
        ours = result.at(n)
        row = {"method": method, "N": int(n)}
        for metric in ("recall", "precision"):
            paper = paper_value(paper_key, method, metric, n, ref) if paper_key else float("nan")
            row[f"{metric}"] = ours[metric]
            row[f"{metric}_paper"] = paper
            row[f"{metric}_diff"] = ours[metric] - paper
        rows.append(row)
    return rows


COMPARISON_COLUMNS = ["method", "N", "recall", "recall_paper", "recall_diff", "precision", "precision_paper",
                      "precision_diff"]


def comparison_markdown(rows: List[dict]) -> str:
    head = ("| method | N | recall ours | recall paper | diff (pt) | precision ours | precision paper "
            "| diff (pt) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
    lines = [f"| {r['method']} | {r['N']} | {_fmt(r['recall'])} | {_fmt(r['recall_paper'])} | "
             f"{_fmt(r['recall_diff'], signed=True)} | {_fmt(r['precision'])} | {_fmt(r['precision_paper'])} | "
             f"{_fmt(r['precision_diff'], signed=True)} |" for r in rows]
    return head + "\n".join(lines) + "\n"


def methods_rows(results: Dict[str, EvalResult], ns: Sequence[int] = tuple(range(1, 11))) -> List[dict]:
    """Mean recall and precision of every method at each N (and its top-1 hit rate)."""
    rows = []
    for method, res in results.items():
        row = {"method": method, "images": len(res.image_ids), "top1_hit_rate": res.top1_hit_rate}
        for n in ns:
            if int(n) in list(res.num_windows):
                v = res.at(n)
                row[f"R@{n}"] = v["recall"]
                row[f"P@{n}"] = v["precision"]
        rows.append(row)
    return rows


def methods_markdown(rows: List[dict], ns: Sequence[int] = tuple(range(1, 11))) -> str:
    cols = [f"R@{n}" for n in ns] + [f"P@{n}" for n in ns]
    head = "| method | images | top-1 hit | " + " | ".join(cols) + " |\n"
    head += "|---|---:|---:|" + "---:|" * len(cols) + "\n"
    lines = ["| " + " | ".join([r["method"], str(r["images"]), _fmt(r["top1_hit_rate"])]
                               + [_fmt(r.get(c, float("nan"))) for c in cols]) + " |" for r in rows]
    return head + "\n".join(lines) + "\n"


def to_csv(rows: List[dict], columns: Optional[Sequence[str]] = None) -> str:
    columns = list(columns or (rows[0].keys() if rows else []))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()
