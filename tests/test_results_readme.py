"""The README's "STL at scale" table says what docs/results/fig3_lite0.json says: every value
and interval of every row, to the printed digit (the README is written by hand from the files
`make results` writes; this keeps the two from drifting apart)."""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CELL = re.compile(r"^(-?\d+\.\d)(?: \[(-?\d+\.\d), (-?\d+\.\d)\])?$")


def readme_table():
    """{method: {column: cell}} of the first table under the README's "STL at scale" heading."""
    text = (ROOT / "README.md").read_text()
    start = text.index("### STL at scale")
    lines = [x for x in text[start:].splitlines() if x.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != len(head):
            break  # the next table
        rows[cells[0]] = dict(zip(head[1:], cells[1:]))
    return rows


def fig3_json():
    doc = json.loads((ROOT / "docs/results/fig3_lite0.json").read_text())
    return {v["method"]: v for k, v in doc.items() if k != "provenance"}


def point(x):
    return f"{100 * x:.1f}"


def test_readme_table_equals_fig3_json():
    runs, rows = fig3_json(), readme_table()
    assert set(rows) == set(runs), "README rows and docs/results/fig3_lite0.json methods differ"
    checked = 0
    for method, cells in rows.items():
        iv = runs[method]["intervals"]
        want = {"top-1 hit rate": iv["top1_hit_rate"]}
        want.update({f"R@{n}": iv["recall"][n] for n in ("1", "2", "5", "10", "100")})
        for col, cell in cells.items():
            if col not in want:
                continue
            m = CELL.match(cell)
            assert m, f"{method} {col}: {cell!r} is not 'v' or 'v [low, high]'"
            assert m.group(1) == point(want[col]["value"]), f"{method} {col}: README {cell}"
            if m.group(2):
                assert (m.group(2), m.group(3)) == (point(want[col]["low"]), point(want[col]["high"])), \
                    f"{method} {col}: README {cell}"
            checked += 1
    assert checked >= 6 * len(rows)


def test_results_files_name_their_images_and_command():
    """Every Markdown table of docs/results/ (but the index and claims.md) carries its command and commit."""
    folder = ROOT / "docs/results"
    mds = [p for p in folder.glob("*.md") if p.name not in ("README.md", "claims.md")]
    assert len(mds) >= 6
    for p in mds:
        text = p.read_text()
        assert "stl " in text and "commit" in text, p.name
