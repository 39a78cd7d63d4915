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
    from .detection import run_table

    return run_table("table1", opts, report.TABLE1_PAIRS, lambda rows, results, ref, note: report.table_markdown(
        rows, "Table 1: detector mAP, positive boxes + negative/test boxes", note))
