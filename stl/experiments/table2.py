"""Table 2 of the paper: detectors tested on Selective Search windows, trained
on the boxes of BING, SELSEARCH, STL-CL (top-3 and top-1) or the ground truth;
mAP plus the best-10 and worst-5 classes of each (ILSVRC-2012-LOC-200 protocol).

    stl table 2 --model MODEL --device DEVICE [--ilsvrc ROOT] [--classes N|WNIDS] [--limit N] [--fast]

Rows: BING+SELSEARCH, SELSEARCH+SELSEARCH, STLCL+SELSEARCH, GROUNDTRUTH+SELSEARCH,
STLCL(top-1)+SELSEARCH. Without --ilsvrc (or $STL_ILSVRC) this is the small real
run on ../shared: it proves the pipeline runs, its numbers are not comparable.

Writes to --out: table2.md (mAP table + best/worst classes), table2.csv,
table2_per_class.csv, table2_diff.json, table2_run.json. See docs/detection.md.
"""
from __future__ import annotations

from .detection import DetectionOptions


def run_table2(opts: DetectionOptions) -> int:
    from ..detection import report
    from ..io import write_json_atomic
    from .detection import Setup, write_text

    s = Setup("table2", opts, report.TABLE2_PAIRS)
    results = s.run()
    ref = report.load_reference()
    rows = report.table_rows(results, s.pairs, "table2_mAP", ref)
    md = report.table2_markdown(rows, results, ref, s.note())
    write_text(s.out / "table2.md", md)
    write_text(s.out / "table2.csv", report.rows_csv(rows))
    write_text(s.out / "table2_per_class.csv", report.rows_csv(report.per_class_rows(results, s.pairs, ref)))
    write_json_atomic(s.out / "table2_diff.json", {r["pair"]: {k: r[k] for k in (
        "status", "reason", "ours_mAP", "paper_mAP", "diff_vs_paper", "paper_same_classes_mAP",
        "diff_vs_paper_same_classes", "classes")} for r in rows})
    write_json_atomic(s.out / "table2_run.json", s.run_info(results))
    print(md)
    return 0 if any(r.status == "ok" for r in results.values()) else 1

