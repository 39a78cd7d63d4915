"""Fig. 2 of the paper: the drop similarity s_drop(d_i, d_j) of Eq. 4 on [0, 1]^2.

s_drop = 1 - |d_i - d_j| * max(1 - d_i, 1 - d_j): two regions whose masking hurts the
classifier alike are similar, and the more so the larger their drops (the penalty for a
difference is scaled by the smaller drop's complement). The grid is computed by
:func:`stl.core.similarity.s_drop` itself; the figure shows it as the paper's 3-D surface and,
beside it, as a contour plot with the same axes (d_i horizontal, d_j vertical).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List

import numpy as np

from .common import csv_text, save_figure, write_text


@dataclass
class SdropGrid:
    d: np.ndarray  # (n,) grid values on [0, 1]
    s: np.ndarray  # (n, n): s[j, i] = s_drop(d[i], d[j])  (rows: d_j, columns: d_i)


def sdrop_grid(step: float = 0.01) -> SdropGrid:
    """s_drop on the grid {0, step, ..., 1}^2 (Fig. 2), straight from :func:`stl.core.similarity.s_drop`."""
    from ..core.similarity import s_drop

    n = int(round(1.0 / step)) + 1
    d = np.linspace(0.0, 1.0, n)
    di, dj = np.meshgrid(d, d)  # di varies along columns, dj along rows
    return SdropGrid(d, s_drop(di, dj))


def plot_fig2(grid: SdropGrid):
    """The 3-D surface (left, as the paper) and a contour plot (right). Returns the Figure."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.8))
    di, dj = np.meshgrid(grid.d, grid.d)
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    stride = max(1, len(grid.d) // 40)
    ax.plot_surface(di, dj, grid.s, cmap="viridis", rstride=stride, cstride=stride, linewidth=0.2,
                    edgecolor="k", alpha=0.95)
    ax.set_xlabel("$d_i$")
    ax.set_ylabel("$d_j$")
    ax.set_zlabel("$s_{drop}(d_i, d_j)$")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_zlim(float(grid.s.min()), 1.0)
    ax.view_init(elev=28, azim=-125)
    ax.set_title("s_drop surface (Fig. 2)", fontsize=10)
    ax2 = fig.add_subplot(1, 2, 2)
    levels = np.linspace(float(grid.s.min()), 1.0, 15)
    cs = ax2.contourf(di, dj, grid.s, levels=levels, cmap="viridis")
    lines = ax2.contour(di, dj, grid.s, levels=levels[::2], colors="k", linewidths=0.5)
    ax2.clabel(lines, fmt="%.2f", fontsize=7)
    fig.colorbar(cs, ax=ax2, label="$s_{drop}$")
    ax2.set_xlabel("$d_i$ (drop of region i)")
    ax2.set_ylabel("$d_j$ (drop of region j)")
    ax2.set_aspect("equal")
    ax2.set_title("same, contours", fontsize=10)
    fig.suptitle(r"Eq. 4: $s_{drop}(d_i, d_j) = 1 - |d_i - d_j| \cdot \max(1 - d_i, 1 - d_j)$; "
                 f"1 on the diagonal, minimum {float(grid.s.min()):.2f} at (0, 1) and (1, 0)", fontsize=10)
    fig.subplots_adjust(left=0.02, right=0.95, bottom=0.12, top=0.86, wspace=0.15)
    return fig


def run_fig2(out, step: float = 0.01, csv_step: float = 0.05) -> dict:
    """Write ``fig2.png/.pdf`` and the grid at ``csv_step`` as ``fig2_sdrop.csv`` / ``.md``.

    Returns ``{"grid": SdropGrid, "files": [...], "min": .., "argmin": [(d_i, d_j), ...]}``.
    """
    out = Path(out)
    grid = sdrop_grid(step)
    files: List[Path] = save_figure(plot_fig2(grid), out, "fig2")
    coarse = sdrop_grid(csv_step)
    rows = [{"d_i": float(a), "d_j": float(b), "s_drop": float(coarse.s[j, i])}
            for j, b in enumerate(coarse.d) for i, a in enumerate(coarse.d)]
    files.append(write_text(out / "fig2_sdrop.csv", csv_text(rows, ["d_i", "d_j", "s_drop"])))
    # Markdown: a d_j x d_i table at 0.1 steps
    tenth = sdrop_grid(0.1)
    head = "| d_j \\ d_i | " + " | ".join(f"{v:.1f}" for v in tenth.d) + " |\n"
    head += "|---|" + "---:|" * len(tenth.d) + "\n"
    body = "\n".join(f"| {b:.1f} | " + " | ".join(f"{tenth.s[j, i]:.3f}" for i in range(len(tenth.d))) + " |"
                     for j, b in enumerate(tenth.d))
    smin = float(grid.s.min())
    where = np.argwhere(np.isclose(grid.s, smin))
    argmin = [(float(grid.d[i]), float(grid.d[j])) for j, i in where]
    md = (f"# Fig. 2: s_drop(d_i, d_j) = 1 - |d_i - d_j| max(1 - d_i, 1 - d_j) (Eq. 4)\n\n"
          f"Computed by `stl.core.similarity.s_drop` on a {len(grid.d)}x{len(grid.d)} grid (figure) and shown here "
          f"at 0.1 steps; `fig2_sdrop.csv` has the {csv_step} grid. Minimum {smin:.4f} at "
          f"{', '.join(f'({a:.2f}, {b:.2f})' for a, b in argmin)}; 1 on the diagonal d_i = d_j.\n\n"
          + head + body + "\n")
    files.append(write_text(out / "fig2_sdrop.md", md))
    return {"grid": grid, "files": files, "min": smin, "argmin": argmin}
