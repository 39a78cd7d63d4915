"""Table 1 of the paper: mAP of detectors trained on the boxes of each proposal
method (positive boxes + negative/test boxes), ILSVRC-2012-LOC-200 protocol
(Sec. 4, "Generating annotations for training detectors").

    stl table 1 --model MODEL --device DEVICE [--ilsvrc ROOT] [--classes N|WNIDS] [--limit N] [--fast]

Rows: BING+BING, EDGEBOXES+EDGEBOXES, MCG+MCG, SELSEARCH+SELSEARCH, STLCL+STLWL,
GROUNDTRUTH+SELSEARCH. A method whose inputs are missing (EdgeBoxes model file,
MCG proposal files) is reported as NOT RUN with the reason; nothing is substituted.
Without --ilsvrc (or $STL_ILSVRC) this is the small real run on ../shared: it
proves the pipeline runs, its numbers are not comparable with the paper's.

Writes to --out: table1.md, table1.csv (ours vs paper, with differences),
table1_per_class.csv, table1_diff.json, table1_run.json (config, split, timings).
See docs/detection.md.
"""
from __future__ import annotations

from .detection import DetectionOptions


def run_table1(opts: DetectionOptions) -> int:
    from ..detection import report
    from ..io import write_json_atomic
    from .detection import Setup, write_text

    s = Setup("table1", opts, report.TABLE1_PAIRS)
    results = s.run()
    ref = report.load_reference()
    rows = report.table_rows(results, s.pairs, "table1_mAP", ref)
    md = report.table_markdown(rows, "Table 1: detector mAP, positive boxes + negative/test boxes", s.note())
    write_text(s.out / "table1.md", md)
    write_text(s.out / "table1.csv", report.rows_csv(rows))
    write_text(s.out / "table1_per_class.csv", report.rows_csv(report.per_class_rows(results, s.pairs, ref)))
    write_json_atomic(s.out / "table1_diff.json", {r["pair"]: {k: r[k] for k in (
        "status", "reason", "ours_mAP", "paper_mAP", "diff_vs_paper", "paper_same_classes_mAP",
        "diff_vs_paper_same_classes", "classes")} for r in rows})
    write_json_atomic(s.out / "table1_run.json", s.run_info(results))
    print(md)
    return 0 if any(r.status == "ok" for r in results.values()) else 1

