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
    from .detection import run_table

    return run_table("table2", opts, report.TABLE2_PAIRS, report.table2_markdown)
