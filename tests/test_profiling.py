"""stl.profiling: stages are exclusive (a nested stage's time is not counted in its parent),
nothing is recorded outside a collector, and STL's run reports its stages and forward counts."""
import time

import numpy as np

from stl.core.localization import localize
from stl.profiling import Stages, stage


def test_nested_stages_are_exclusive():
    with Stages() as st:
        with stage("outer"):
            time.sleep(0.05)
            with stage("inner", count=3):
                time.sleep(0.1)
    assert 0.09 <= st.seconds["inner"] < 0.2
    assert 0.04 <= st.seconds["outer"] < 0.09  # the inner 0.1 s is not counted again
    assert st.counts["inner"] == 3
    assert abs(st.total() - (st.seconds["inner"] + st.seconds["outer"])) < 1e-12


def test_no_collector_records_nothing():
    with stage("x"):
        pass
    with Stages() as st:
        pass
    assert dict(st.seconds) == {}


def test_stl_reports_its_stages_and_forward_counts():
    from stubs import A_RGB, B_RGB, C_RGB, StubClassifier

    img = np.zeros((10, 30, 3), np.uint8)
    img[:, :10], img[:, 10:20], img[:, 20:] = A_RGB, B_RGB, C_RGB
    labels = np.repeat(np.array([[0] * 10 + [1] * 10 + [2] * 10]), 10, axis=0).astype(np.int32)
    clf = StubClassifier()
    with Stages() as st:
        w = localize(img, clf, label=0, label_maps=[labels])
    for name in ("segmentation", "masked forwards", "mask images", "crop forwards", "crop preprocessing",
                 "clustering", "nms + pooling", "full-image forwards"):
        assert name in st.seconds, name
    # 3 regions + 2 merges: 5 masks and 5 crops (de-duplicated), plus the whole image
    assert st.counts["full-image forwards"] == 1
    assert st.counts["masked forwards"] + st.counts["crop forwards"] + 1 == w.num_forwards
    assert st.counts["masked forwards"] == 5 and st.counts["crop forwards"] == 5
