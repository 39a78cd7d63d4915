"""tools/incremental_bound.py: the changed outputs of a masked box, layer by layer, on cases
computed by hand, and Lite0's convolutions read from the model itself."""
import pytest
from conftest import load_script


@pytest.fixture(scope="module")
def tool():
    return load_script("tools/incremental_bound.py")


def test_changed_outputs_of_one_convolution(tool):
    # 3x3, stride 1, pad 1: output o reads inputs o-1..o+1, so input 4 changes outputs 3..5
    assert tool.changed_interval(4, 4, 3, 1, 1, 10) == (3, 5)
    # 3x3, stride 2, TF SAME on an even input (pad 0 before): o reads 2o..2o+2 -> input 4: o = 1, 2
    assert tool.changed_interval(4, 4, 3, 2, 0, 5) == (1, 2)
    # clipped at the borders
    assert tool.changed_interval(0, 9, 5, 1, 2, 10) == (0, 9)
    assert tool.changed_interval(9, 9, 3, 2, 0, 5) == (4, 4)
    # 1x1 stride 1: exactly the box
    assert tool.changed_interval(2, 6, 1, 1, 0, 10) == (2, 6)


def test_box_macs_propagates_the_box(tool):
    # layer 1: 1x1 (5 MACs per output), layer 2: 3x3 stride 1 pad 1 (7 MACs per output), 10x10 maps
    table = [("a", 1, 1, 0, 10, 10, 5), ("b", 3, 1, 1, 10, 10, 7)]
    # box x 2..4, y 3..3: layer a changes 3 x 1 outputs, layer b 5 x 3 (grown by one on every side)
    assert tool.box_macs([2, 3, 4, 3], table) == 3 * 1 * 5 + 5 * 3 * 7
    # the whole map changes everything
    assert tool.box_macs([0, 0, 9, 9], table) == 100 * 5 + 100 * 7


def test_lite0_convolutions_from_the_model(tool):
    from stl.models.efficientnet import EfficientNetLite0

    table = tool.conv_table(EfficientNetLite0().net)
    name, k, s, pl, n_in, n_out, macs = table[0]
    assert (k, s, pl, n_in, n_out, macs) == (3, 2, 0, 224, 112, 3 * 3 * 3 * 32)  # the stem, TF SAME (0, 1)
    assert table[-1][1:] == (1, 1, 0, 7, 7, 320 * 1280)  # the head's 1x1 convolution
    full = sum(n * n * m for *_, n, m in table)
    assert 3.5e8 < full < 4.2e8  # ~0.4 G MACs, EfficientNet-Lite0's published cost
    # a one-pixel box in the middle changes far less than the whole net, a whole-image box all of it
    assert tool.box_macs([112, 112, 112, 112], table) < full
    assert tool.box_macs([0, 0, 223, 223], table) == full
