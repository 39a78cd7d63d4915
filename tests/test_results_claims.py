"""tools/results_claims.py: the paper's claims stated as holds / does not hold from the JSON files
`stl eval --paired` and `stl wsol` write (hand-made files with known differences)."""
import json

import pytest

from conftest import load_script


@pytest.fixture(scope="module")
def claims_tool():
    return load_script("tools/results_claims.py")


def paired(diffs, images=128):
    """A `stl eval --paired --json` document: {(figure, N): (diff, low, high)} as fractions."""
    return {"paired": {"images": images, "rows": [
        {"figure": f, "N": n, "diff": d, "diff_low": lo, "diff_high": hi} for (f, n), (d, lo, hi) in diffs.items()]}}


def test_claims_from_paired_files(tmp_path, claims_tool):
    ns = ("1", "2", "5", "10", "100")
    wl_cl = {("top-1 hit rate", ""): (0.01, -0.02, 0.04), **{("recall", n): (-0.015, -0.05, 0.02) for n in ns}}
    wl_cl[("recall", "5")] = (-0.031, -0.06, -0.01)  # one gap above 2 points: the claim fails
    (tmp_path / "paired_wl_vs_cl.json").write_text(json.dumps(paired(wl_cl)))
    ss = {("recall", n): (0.05, 0.01, 0.09) for n in ns[:4]}
    ss[("recall", "1")] = (0.02, -0.01, 0.05)  # above but not significant
    (tmp_path / "paired_wl_vs_selsearch.json").write_text(json.dumps(paired(ss)))
    bing = {("recall", n): (0.03, 0.0, 0.06) for n in ns[:4]}
    bing[("recall", "2")] = (-0.01, -0.04, 0.02)
    (tmp_path / "paired_wl_vs_bing.json").write_text(json.dumps(paired(bing)))
    abl = {**{("recall", n): (0.1, 0.05, 0.15) for n in ns}, **{("precision", n): (0.08, 0.04, 0.12) for n in ns}}
    (tmp_path / "ablation_sdrop.json").write_text(json.dumps(paired(abl, 64)))
    wsol = {"protocol": {"half2": {
        "STL+-WL": {"images": 64, "recall@10": 0.8, "top1_hit_rate": 0.7,
                    "paired_vs_center": {"top1_hit_rate": {"diff": 0.06, "low": 0.01, "high": 0.11}}},
        "STL-WL": {"images": 64, "recall@10": 0.8}}},
        "paired_vs_cam": {"STL-WL-HEAT": {"max_box_acc_v2": {"diff": -3.2, "low": -6.0, "high": -0.4, "images": 128}},
                          "RISE": {"max_box_acc_v2": {"diff": 1.0, "low": 0.0, "high": 2.0, "images": 128}}}}
    (tmp_path / "wsol.json").write_text(json.dumps(wsol))

    found = {c: (h, t) for c, h, t in claims_tool.claims(tmp_path)}
    holds, text = found["STL-WL is within 2 points of STL-CL"]
    assert not holds and "largest gap 3.1 points (recall 5)" in text and "R@5 -3.1 [-6.0, -1.0]" in text
    holds, text = found["STL-WL beats SELSEARCH at N <= 10 (recall)"]
    assert holds and "above at N = 1, 2, 5, 10, significantly at N = 2, 5, 10" in text
    assert not found["STL-WL beats BING at N <= 10 (recall)"][0]
    holds, text = found["removing s_drop costs precision and recall (paper: 8% precision, 10% recall)"]
    assert holds and text.startswith("64 images") and "R@1 +10.0 [+5.0, +15.0] / P@1 +8.0 [+4.0, +12.0]" in text
    goal = "goal: STL+-WL top-1 hit rate above CENTER on the second half, interval excluding 0"
    assert found[goal] == (True, "64 second-half images; STL+-WL - CENTER +6.0 [+1.0, +11.0]")
    assert found["goal: STL+ recall@10 equals STL's (re-ranks the top 10 only)"][0]
    holds, text = found["goal: STL-WL-HEAT MaxBoxAccV2 at or above CAM's (same backbone and images)"]
    assert not holds and "STL-WL-HEAT - CAM -3.2 [-6.0, -0.4]" in text
    assert not any("RISE" in c for c in found)  # only STL rows are goals
    assert claims_tool.main(["x", str(tmp_path)]) == 0
    md = (tmp_path / "claims.md").read_text()
    assert md.count("| **does not hold** |") == 3 and md.count("| holds |") == 4
