"""``stl fig2``: Fig. 2, the s_drop surface of Eq. 4 on [0, 1]^2 (PNG + PDF + CSV/Markdown grid)."""
from __future__ import annotations


def add_arguments(p):
    p.add_argument("--step", type=float, default=0.01, help="grid step of the figure (default 0.01)")
    p.add_argument("--csv-step", type=float, default=0.05, help="grid step of fig2_sdrop.csv (default 0.05)")
    p.add_argument("--out", default="results/fig2")


def main(args) -> int:
    from ..experiments.fig2 import run_fig2

    res = run_fig2(args.out, step=args.step, csv_step=args.csv_step)
    print(f"fig2: s_drop on a {len(res['grid'].d)}^2 grid; min {res['min']:.4f} at {res['argmin']}; "
          f"max {res['grid'].s.max():.4f} (diagonal)")
    for f in res["files"]:
        print(f"fig2: wrote {f}")
    return 0
