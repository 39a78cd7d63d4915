"""The paper's qualitative claims checked on the runs of tools/results.sh: docs/results/claims.md.

    python tools/results_claims.py docs/results        (tools/results.sh tables runs it last)

Reads the JSON files `stl eval --paired` and `stl wsol` wrote into the folder and states each
claim as holds / does not hold with its numbers (points, 95% paired per-image bootstrap
intervals; "significant" = the interval excludes 0).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def load(folder: Path, name: str):
    p = folder / name
    return json.loads(p.read_text()) if p.exists() else None


def rows(doc) -> dict:
    """{(figure, N): (diff, low, high)} of a paired `stl eval` JSON, in points."""
    return {(r["figure"], str(r["N"])): (100 * r["diff"], 100 * r["diff_low"], 100 * r["diff_high"])
            for r in doc["paired"]["rows"]}


def fmt(d) -> str:
    return f"{d[0]:+.1f} [{d[1]:+.1f}, {d[2]:+.1f}]"


def claims(folder: Path) -> list:
    out = []
    wl_cl = load(folder, "paired_wl_vs_cl.json")
    if wl_cl:
        r, n = rows(wl_cl), wl_cl["paired"]["images"]
        keys = [("top-1 hit rate", "")] + [("recall", k) for k in ("1", "2", "5", "10", "100")]
        worst = max((abs(r[k][0]), k) for k in keys if k in r)
        holds = worst[0] <= 2.0
        out.append(("STL-WL is within 2 points of STL-CL", holds,
                    f"{n} images; STL-WL - STL-CL: top-1 {fmt(r[keys[0]])}, "
                    + ", ".join(f"R@{k[1]} {fmt(r[k])}" for k in keys[1:] if k in r)
                    + f"; largest gap {worst[0]:.1f} points ({worst[1][0]} {worst[1][1]})".rstrip()))
    for b in ("selsearch", "bing"):
        doc = load(folder, f"paired_wl_vs_{b}.json")
        if not doc:
            continue
        r, n = rows(doc), doc["paired"]["images"]
        ns = [k for k in ("1", "2", "5", "10") if ("recall", k) in r]
        above = [k for k in ns if r[("recall", k)][0] > 0]
        sig = [k for k in ns if r[("recall", k)][1] > 0]
        out.append((f"STL-WL beats {b.upper()} at N <= 10 (recall)", len(above) == len(ns),
                    f"{n} images; STL-WL - {b.upper()}: " + ", ".join(f"R@{k} {fmt(r[('recall', k)])}" for k in ns)
                    + f"; above at N = {', '.join(above) or 'none'}, significantly at N = {', '.join(sig) or 'none'}"))
    abl = load(folder, "ablation_sdrop.json")
    if abl:
        r, n = rows(abl), abl["paired"]["images"]
        ns = [k for k in ("1", "2", "5", "10", "100") if ("recall", k) in r]
        costs = all(r[("recall", k)][0] >= 0 and r[("precision", k)][0] >= 0 for k in ns)
        out.append(("removing s_drop costs precision and recall (paper: 8% precision, 10% recall)", costs,
                    f"{n} images; STL-WL - STL-WL without s_drop: "
                    + ", ".join(f"R@{k} {fmt(r[('recall', k)])} / P@{k} {fmt(r[('precision', k)])}" for k in ns)))
    wsol = load(folder, "wsol.json")
    if wsol:
        h2 = (wsol.get("protocol") or {}).get("half2") or {}
        plus = h2.get("STL+-WL")
        if plus and plus.get("paired_vs_center"):
            d = plus["paired_vs_center"]["top1_hit_rate"]
            t = (100 * d["diff"], 100 * d["low"], 100 * d["high"])
            out.append(("goal: STL+-WL top-1 hit rate above CENTER on the second half, interval excluding 0",
                        t[1] > 0, f"{plus['images']} second-half images; STL+-WL - CENTER {fmt(t)}"))
        if plus and "STL-WL" in h2:
            same = abs(plus["recall@10"] - h2["STL-WL"]["recall@10"]) < 1e-12
            out.append(("goal: STL+ recall@10 equals STL's (re-ranks the top 10 only)", same,
                        f"R@10 STL+-WL {100 * plus['recall@10']:.1f}, STL-WL {100 * h2['STL-WL']['recall@10']:.1f}"))
        for m, d in sorted((wsol.get("paired_vs_cam") or {}).items()):
            if not m.startswith("STL") or not d:
                continue
            v = d["max_box_acc_v2"]
            out.append((f"goal: {m} MaxBoxAccV2 at or above CAM's (same backbone and images)", v["diff"] >= 0,
                        f"{v['images']} images; {m} - CAM {v['diff']:+.1f} [{v['low']:+.1f}, {v['high']:+.1f}]"))
    return out


def main(argv) -> int:
    folder = Path(argv[1] if len(argv) > 1 else "docs/results")
    found = claims(folder)
    lines = ["# The paper's claims and the issue's goals, checked on these images", "",
             "Written by `python tools/results_claims.py` from the JSON files beside it (points; 95% paired "
             "per-image bootstrap intervals, the same images drawn for both methods).", "",
             "| claim | on these images | numbers |", "|---|---|---|"]
    lines += [f"| {c} | {'holds' if h else '**does not hold**'} | {t} |" for c, h, t in found]
    (folder / "claims.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
