import numpy as np
import pytest

from stl.core.boxes import box_area, iou_matrix, nms, scale_boxes, sort_by_score


def test_area_and_iou_pascal_inclusive():
    assert box_area(np.array([0, 0, 9, 9]))[0] == 100
    # [0,0,9,9] and [5,0,14,9]: intersection 5x10 = 50, union 150
    assert iou_matrix([[0, 0, 9, 9]], [[5, 0, 14, 9]])[0, 0] == pytest.approx(1 / 3)
    assert iou_matrix([[0, 0, 9, 9]], [[20, 20, 29, 29]])[0, 0] == 0.0


def test_nms_removes_only_iou_above_threshold():
    boxes = np.array([[0, 0, 9, 9],      # 0.9
                      [1, 0, 10, 9],     # 0.8, IoU 90/110 = 0.82 with #0 -> removed
                      [5, 0, 14, 9],     # 0.7, IoU 1/3 with #0 -> kept
                      [0, 0, 9, 4]])     # 0.6, IoU exactly 0.5 with #0 -> kept (not > 0.5)
    keep = nms(boxes, np.array([0.9, 0.8, 0.7, 0.6]), 0.5)
    assert keep.tolist() == [0, 2, 3]


def test_nms_ties_and_nan_are_deterministic():
    boxes = np.array([[0, 0, 9, 9], [0, 0, 9, 9], [20, 20, 29, 29]])
    assert nms(boxes, np.array([0.5, 0.5, np.nan]), 0.5).tolist() == [0, 2]
    assert sort_by_score(np.array([np.nan, 1.0, 1.0, 2.0])).tolist() == [3, 1, 2, 0]


def test_scale_boxes_maps_pixel_spans():
    # full image of a 227 grid maps to the full original image
    np.testing.assert_allclose(scale_boxes([[0, 0, 226, 226]], (227, 227), (375, 500)), [[0, 0, 499, 374]])
    # columns 0..9 of a 10-px-wide image doubled -> 0..19
    np.testing.assert_allclose(scale_boxes([[0, 0, 4, 4]], (10, 10), (20, 20)), [[0, 0, 9, 9]])


def test_scale_boxes_shrinking_keeps_valid_boxes():
    # one column of a 224-px grid mapped onto a 3-px image stays a valid (x1 >= x0) box
    out = scale_boxes([[100, 100, 100, 100], [0, 0, 223, 223]], (224, 224), (3, 3))
    assert (out[:, 2] >= out[:, 0]).all() and (out[:, 3] >= out[:, 1]).all()
    np.testing.assert_allclose(out[1], [0, 0, 2, 2])
