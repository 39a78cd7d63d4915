"""Eq. 1-4 with hand-computed values."""
import numpy as np
import pytest

from stl.core import similarity as S


def test_drop_vector_is_clipped_difference_eq1():
    full = np.array([0.5, 0.3, 0.2])
    masked = np.array([[0.1, 0.6, 0.3], [0.5, 0.3, 0.2]])
    np.testing.assert_allclose(S.drop_vector(full, masked), [[0.4, 0.0, 0.0], [0.0, 0.0, 0.0]])


def test_drop_cl_eq2_and_wl_eq3():
    full = np.array([0.40, 0.25, 0.15, 0.10, 0.06, 0.04])
    masked = np.array([0.10, 0.35, 0.05, 0.10, 0.00, 0.40])
    assert S.drop_cl(full, masked, 0) == pytest.approx(0.30)
    assert S.drop_cl(full, masked, 1) == pytest.approx(0.0)  # score went up: no drop
    # top-5 of f(x) = classes 0..4; paper text (clamp per class): 0.30 + 0 + 0.10 + 0 + 0.06 = 0.46
    # (class 5 is not in the top-5); authors' code (clamp the sum): 0.30 - 0.10 + 0.10 + 0 + 0.06 = 0.36
    assert S.drop_wl(full, masked, top_k=5, rule="clamp_then_sum") == pytest.approx(0.46)
    assert S.drop_wl(full, masked, top_k=5, rule="sum_then_clamp") == pytest.approx(0.36)
    assert S.drop_wl(full, masked, top_k=5) == pytest.approx(0.36)  # the default: the authors' rule
    assert list(S.top_classes(full, 2)) == [0, 1]


def test_top_classes_ties_break_by_index():
    assert list(S.top_classes(np.array([0.2, 0.4, 0.4, 0.0]), 2)) == [1, 2]
    assert list(S.top_classes(np.array([0.2, 0.4, 0.4, 0.0]), 2, "sum_then_clamp")) == [2, 1]


def test_s_drop():
    # 1 - |0.8 - 0.2| * max(0.2, 0.8) = 1 - 0.6 * 0.8 = 0.52
    assert S.s_drop(0.8, 0.2) == pytest.approx(0.52)
    assert S.s_drop(0.5, 0.5) == pytest.approx(1.0)
    assert S.s_drop(1.0, 0.0) == pytest.approx(0.0)


def test_s_app_histogram_intersection_of_l1_normalised_features():
    h1 = S.l1_normalize(np.array([[2.0, 1.0, 1.0, 0.0]]))  # 0.5 0.25 0.25 0
    h2 = S.l1_normalize(np.array([[0.0, 1.0, 1.0, 2.0]]))  # 0 0.25 0.25 0.5
    np.testing.assert_allclose(h1, [[0.5, 0.25, 0.25, 0.0]])
    assert S.s_app(h1, h2)[0] == pytest.approx(0.5)
    assert S.s_app(h1, h1)[0] == pytest.approx(1.0)
    # negatives are clipped (a histogram), an all-zero feature stays zero
    np.testing.assert_allclose(S.l1_normalize(np.array([[-1.0, 1.0, 3.0]])), [[0.0, 0.25, 0.75]])
    np.testing.assert_allclose(S.l1_normalize(np.zeros((1, 3))), np.zeros((1, 3)))


def test_s_size_and_s_fill():
    # image 10x10 = 100 px; r_i 20 px in box [0,0,4,4] (25 px), r_j 10 px in box [5,0,9,1] (10 px)
    assert S.s_size(20, 10, 100) == pytest.approx(0.7)
    # B(r_i u r_j) = [0,0,9,4] -> 50 px; fill = 1 - (50 - 20 - 10) / 100 = 0.8
    assert S.s_fill(np.array([0, 0, 4, 4]), np.array([5, 0, 9, 1]), 20, 10, 100) == pytest.approx(0.8)


def test_similarity_uniform_weights():
    h = S.l1_normalize(np.array([[1.0, 1.0]]))
    s = S.similarity(0.8, 0.2, h, h, np.array([0, 0, 4, 4]), np.array([5, 0, 9, 1]), 20, 10, 100)
    # 0.25 * (0.52 + 1.0 + 0.7 + 0.8)
    assert s[0] == pytest.approx(0.25 * 3.02)
