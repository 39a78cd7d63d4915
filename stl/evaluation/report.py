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
                    ref: Optional[dict] = None, ci: Optional[dict] = None) -> List[dict]:
    """One row per N: ours, paper and ours - paper for mean recall and precision; with ``ci``
    (:func:`stl.evaluation.bootstrap.eval_intervals`) also each figure's interval
    (``recall_low``, ``recall_high``, ...)."""
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
            if ci is not None and int(n) in ci[metric]:
                row[f"{metric}_low"] = ci[metric][int(n)].low
                row[f"{metric}_high"] = ci[metric][int(n)].high
        rows.append(row)
    return rows


COMPARISON_COLUMNS = ["method", "N", "recall", "recall_paper", "recall_diff", "precision", "precision_paper",
                      "precision_diff"]
#: the interval columns of :func:`comparison_rows` with ``ci``
CI_COLUMNS = ["recall_low", "recall_high", "precision_low", "precision_high"]


def _fmt_ci(r: dict, metric: str, signed: bool = False) -> str:
    """``value`` or, when the row has an interval, ``value [low, high]`` (percent)."""
    text = _fmt(r[metric], signed=signed)
    if f"{metric}_low" in r and text != "-":
        text += f" [{_fmt(r[f'{metric}_low'], signed=signed)}, {_fmt(r[f'{metric}_high'], signed=signed)}]"
    return text


def comparison_markdown(rows: List[dict]) -> str:
    ci = bool(rows) and "recall_low" in rows[0]
    ours = " [CI]" if ci else ""
    head = (f"| method | N | recall ours{ours} | recall paper | diff (pt) | precision ours{ours} | precision paper "
            "| diff (pt) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
    lines = [f"| {r['method']} | {r['N']} | {_fmt_ci(r, 'recall')} | {_fmt(r['recall_paper'])} | "
             f"{_fmt(r['recall_diff'], signed=True)} | {_fmt_ci(r, 'precision')} | {_fmt(r['precision_paper'])} | "
             f"{_fmt(r['precision_diff'], signed=True)} |" for r in rows]
    return head + "\n".join(lines) + "\n"


def paired_rows(label_a: str, label_b: str, diff: dict, ns: Sequence[int]) -> List[dict]:
    """Rows of a paired comparison (:func:`stl.evaluation.bootstrap.paired_bootstrap`): per figure,
    A - B and its interval."""
    rows = [{"figure": "top-1 hit rate", "N": "", "a": label_a, "b": label_b,
             "diff": diff["top1_hit_rate"].value, "diff_low": diff["top1_hit_rate"].low,
             "diff_high": diff["top1_hit_rate"].high}]
    for metric in ("recall", "precision"):
        for n in ns:
            if int(n) in diff[metric]:
                iv = diff[metric][int(n)]
                rows.append({"figure": metric, "N": int(n), "a": label_a, "b": label_b, "diff": iv.value,
                             "diff_low": iv.low, "diff_high": iv.high})
    return rows


PAIRED_COLUMNS = ["figure", "N", "a", "b", "diff", "diff_low", "diff_high"]


def paired_markdown(rows: List[dict], level: float) -> str:
    head = (f"| figure | N | A - B (pt) | {100 * level:g}% interval | interval excludes 0 |\n"
            "|---|---:|---:|---:|---|\n")
    lines = []
    for r in rows:
        excl = "-" if math.isnan(r["diff_low"]) else ("yes" if r["diff_low"] > 0 or r["diff_high"] < 0 else "no")
        lines.append(f"| {r['figure']} | {r['N']} | {_fmt(r['diff'], signed=True)} | "
                     f"[{_fmt(r['diff_low'], signed=True)}, {_fmt(r['diff_high'], signed=True)}] | {excl} |")
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
