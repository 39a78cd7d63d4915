"""What each field of the evaluation protocol does to stored runs (docs/fidelity.md).

    stl eval-profiles RUN.h5 [RUN.h5 ...] [--n 1 2 5 10 100 1000] [--md OUT.md]

For every run file (written by ``stl run`` / ``experiments/fig3.py``): the mean
recall and precision at each N under the ``authors`` profile, the ``corrected``
profile, and the ``authors`` profile with ONE field switched to its
``corrected`` value (difficult, images without windows, tie order, IoU), so
each difference is measured alone. Also: how many stored windows share their
(float32) score with another window of the same image, overall and among the
top 10 -- only those can move under the tie order.
"""
from __future__ import annotations

from dataclasses import fields, replace
from typing import Optional, Sequence

import numpy as np


def tie_counts(run) -> dict:
    """Windows that share their score with another window of the same image (all, and in the top 10)."""
    total = tied = top = top_tied = 0
    for i in run.image_ids:
        s = np.asarray(run.scores[i])
        _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
        in_tie = counts[inverse] > 1
        total += len(s)
        tied += int(in_tie.sum())
        top += min(10, len(s))
        top_tied += int(in_tie[:10].sum())
    return {"windows": total, "tied": tied, "top10": top, "top10_tied": top_tied}


def variants():
    from ..evaluation import EVAL_PROFILES

    a, c = EVAL_PROFILES["authors"], EVAL_PROFILES["corrected"]
    out = {"authors": a, "corrected": c}
    for f in fields(a):
        if getattr(a, f.name) != getattr(c, f.name):
            out[f"authors, {f.name}={getattr(c, f.name)}"] = replace(a, **{f.name: getattr(c, f.name)})
    return out


def eval_profiles_tables(runs: Sequence, root=None, ns: Sequence[int] = (1, 2, 5, 10, 100, 1000),
                         md: Optional[str] = None) -> str:
    """The tables for stored runs ``runs`` (printed, and written to ``md`` if given); returns them."""
    from ..evaluation.protocol import AUTHORS_MAX_SUBWIN
    from ..evaluation.runs import evaluate_run
    from ..runner import load_run

    ns = sorted(set(ns))
    parts = []
    for path in runs:
        run = load_run(path, max_windows=AUTHORS_MAX_SUBWIN)
        t = tie_counts(run)
        head = (f"### {path}\n\n{run.meta.get('method', '?')} on {run.meta.get('dataset_key', '?')}, "
                f"{len(run.image_ids)} images, {t['windows']} windows: {t['tied']} share their score with another "
                f"window of their image ({t['top10_tied']} of the {t['top10']} top-10 windows)\n")
        cols = [f"R@{n}" for n in ns] + [f"P@{n}" for n in ns]
        lines = ["| protocol | images | empty | classes | " + " | ".join(cols) + " |",
                 "|---|---:|---:|---:|" + "---:|" * len(cols)]
        for name, proto in variants().items():
            r = evaluate_run(path, root=root, num_windows=ns, protocol=proto).result
            vals = [r.at(n)["recall"] for n in ns] + [r.at(n)["precision"] for n in ns]
            lines.append(f"| {name} | {len(r.image_ids)} | {len(r.empty)} | {len(r.classes)} | "
                         + " | ".join(f"{100 * v:.2f}" for v in vals) + " |")
        part = head + "\n" + "\n".join(lines) + "\n"
        print(part)
        parts.append(part)
    text = "Mean recall (R@N) and precision (P@N) in %.\n\n" + "\n".join(parts)
    if md:
        from .common import write_text

        write_text(md, text)
    return text
