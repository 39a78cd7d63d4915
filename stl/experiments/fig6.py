"""Figure 6 of the paper: per-class AP of the detector trained on ground-truth
boxes (GROUNDTRUTH+SELSEARCH, x) against the one trained on STL-CL boxes
(STLCL+SELSEARCH, y), with the number of classes above the diagonal (paper: 41
of 200). The paper's 200 points are drawn in grey under ours.

    stl fig6 --model MODEL --device DEVICE [--ilsvrc ROOT] [--classes N|WNIDS] [--limit N] [--fast]

Shares trained detectors with ``stl table 2`` (same --work and settings). Without
--ilsvrc (or $STL_ILSVRC) this is the small real run on ../shared.

Writes to --out: fig6.png, fig6.pdf, fig6.md, fig6.csv (per-class APs, ours and
paper), fig6_diff.json, fig6_run.json. See docs/detection.md.
"""
from __future__ import annotations

from .detection import DetectionOptions


def run_fig6(opts: DetectionOptions) -> int:

    from ..detection import report
    from ..io import write_json_atomic
    from .common import save_figure
    from .detection import Setup, write_text

    s = Setup("fig6", opts, report.FIG6_PAIRS)
    if len(s.pairs) != 2:
        raise SystemExit("fig6 takes exactly two pairs (x, y)")
    results = s.run()
    ref = report.load_reference()
    px, py = s.pairs
    rx, ry = results[px], results[py]
    ours_x = rx.aps if rx.status == "ok" else {}
    ours_y = ry.aps if ry.status == "ok" else {}
    paper_x, paper_y = report.paper_class_aps(ref, px), report.paper_class_aps(ref, py)
    common, above = report.fig6_counts(ours_x, ours_y)
    pcommon, pabove = report.fig6_counts(paper_x, paper_y)
    paper_count = ref["tables"].get("classes_above_diagonal_fig6") if (px, py) == report.FIG6_PAIRS else pabove
    # the paper's count restricted to our classes
    psame = sum(1 for c in common if c in paper_x and c in paper_y and paper_y[c] > paper_x[c])
    title = (f"classes above the diagonal: ours {above} of {len(common)}, "
             f"paper {paper_count} of {len(pcommon)}")
    if s.mode == "shared":
        title += "\nSMALL RUN on ../shared: proves the pipeline runs; not comparable"
    fig = report.plot_fig6(ours_x, ours_y, paper_x, paper_y, title)
    for path in save_figure(fig, s.out, "fig6"):
        print(f"wrote {path}")
    rows = []
    for c in common:
        rows.append({"wnid": c, "class": report.class_name(ref, c), "x_ours_AP": ours_x[c], "y_ours_AP": ours_y[c],
                     "ours_above": bool(ours_y[c] > ours_x[c]), "x_paper_AP": paper_x.get(c, float("nan")),
                     "y_paper_AP": paper_y.get(c, float("nan")),
                     "paper_above": bool(paper_y.get(c, 0) > paper_x.get(c, 0)) if c in paper_x else ""})
    lines = [f"## Figure 6: per-class AP, {py} (y) vs {px} (x)", "", s.note(), "",
             "| | classes above the diagonal | classes |", "|---|---:|---:|",
             f"| ours | {above} | {len(common)} |",
             f"| paper, same classes | {psame} | {sum(1 for c in common if c in paper_x)} |",
             f"| paper (published) | {paper_count} | {len(pcommon)} |", ""]
    for name, r in ((px, rx), (py, ry)):
        if r.status != "ok":
            lines.append(f"**{name}: NOT RUN** -- {r.reason}\n")
    if rows:
        lines += ["| class | x ours | y ours | x paper | y paper |", "|---|---:|---:|---:|---:|"]
        for row in rows:
            lines.append(f"| {row['class']} ({row['wnid']}) | {report.pct(row['x_ours_AP'])} | "
                         f"{report.pct(row['y_ours_AP'])} | {report.pct(row['x_paper_AP'])} | "
                         f"{report.pct(row['y_paper_AP'])} |")
    md = "\n".join(lines) + "\n"
    write_text(s.out / "fig6.md", md)
    write_text(s.out / "fig6.csv", report.rows_csv(rows) if rows else "wnid,class\n")
    write_json_atomic(s.out / "fig6_diff.json", {
        "pairs": [px, py], "ours_above": above, "ours_classes": len(common), "paper_above": paper_count,
        "paper_classes": len(pcommon), "paper_above_same_classes": psame,
        "diff_above_fraction": (above / len(common) - paper_count / len(pcommon)) if common and pcommon else None})
    write_json_atomic(s.out / "fig6_run.json", s.run_info(results))
    print(md)
    return 0 if common else 1

