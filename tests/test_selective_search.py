"""SELSEARCH: Selective Search "fast" of the SelectiveSearchCodeIJCV release (the paper's
baseline). Hand-computed cases for each piece (histograms and their intersection, the merge
order on a tiny region graph, the priorities of one segmentation, the seeded ranking),
then the whole method on real images."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from stl.core.boxes import iou_matrix
from stl.core.config import SelectiveSearchConfig
from stl.core.similarity import s_app
from stl.proposals import build_method
from stl.proposals.selective_search import (colour_histograms, gaussian_derivative_maps, hierarchical_grouping,
                                            neighbour_pairs, rank_pool, segmentation_boxes, texture_histograms)

NO_MIN = SelectiveSearchConfig(min_box_width=0)


# -- histograms ---------------------------------------------------------------------------------

def test_colour_histograms_and_their_intersection_by_hand():
    # 1 x 3 image, one channel; region 0 = pixels 0, 1; region 1 = pixel 2; 4 bins over [0, 1]
    labels = np.array([[0, 0, 1]])
    v = np.array([[[0.0], [0.30], [1.0]]])  # bins floor(4 v) clipped to 3: 0, 1, 3
    h = colour_histograms(labels, v, 2, bins=4)
    np.testing.assert_allclose(h, [[0.5, 0.5, 0, 0], [0, 0, 0, 1]])
    # intersection sum_k min(h_i, h_j): 0 for disjoint supports, 1 with itself, 0.5 partly
    assert s_app(h[0], h[1]) == 0.0
    assert s_app(h[0], h[0]) == 1.0
    assert s_app(h[0], np.array([0.5, 0, 0.5, 0])) == 0.5
    # three channels: the 3 x 25 = 75-d vector sums to 1 (L1 over all channels)
    rgb = np.random.RandomState(0).rand(5, 6, 3)
    lab = np.repeat(np.arange(3), 10).reshape(5, 6)
    h3 = colour_histograms(lab, rgb, 3, bins=25)
    assert h3.shape == (3, 75)
    np.testing.assert_allclose(h3.sum(1), 1.0)
    np.testing.assert_allclose(h3[:, :25].sum(1), 1 / 3)


def test_texture_of_a_vertical_edge_is_one_orientation_pair():
    # a step from 0 to 1 along x: G_x > 0, G_y = 0. Orientation 0 (cos = 1) responds, orientation
    # 4 (theta = pi) is its negative (clipped to 0), 2 and 6 (theta = +-pi/2) see nothing.
    img = np.zeros((9, 9))
    img[:, 5:] = 1.0
    maps = gaussian_derivative_maps(img, 8, 1.0)
    assert maps.shape == (8, 9, 9)
    assert maps[0].max() == 1.0  # normalised by its maximum, at the edge
    assert np.argmax(maps[0][4]) in (4, 5)
    assert maps[4].max() == 0.0
    assert np.abs(maps[2]).max() < 1e-12 and np.abs(maps[6]).max() < 1e-12
    np.testing.assert_allclose(maps[1], maps[7])  # +-45 degrees see cos(45) G_x alike
    labels = np.zeros((9, 9), np.int64)
    labels[:, 5:] = 1
    t = texture_histograms(labels, img[..., None], 2, 8, 10, 1.0)
    assert t.shape == (2, 80)
    np.testing.assert_allclose(t.sum(1), 1.0)
    # every pixel of orientation 4 (all zero) falls in its bin 0: 1/8 of each region's mass
    np.testing.assert_allclose(t[:, 40], 1 / 8)


def test_neighbour_pairs_are_4_connected():
    labels = np.array([[0, 1],
                       [2, 3]])
    np.testing.assert_array_equal(neighbour_pairs(labels), [[0, 1], [0, 2], [1, 3], [2, 3]])


# -- the merge order --------------------------------------------------------------------------------

def strip():
    """4 single-pixel regions in a row (image 1 x 4, |im| = 4), neighbours (0,1), (1,2), (2,3)."""
    boxes = np.array([[x, 0, x, 0] for x in range(4)], np.float64)
    sizes = np.ones(4)
    pairs = np.array([[0, 1], [1, 2], [2, 3]])
    texture = np.array([[1, 0], [1, 0], [0, 1], [0.5, 0.5]])
    return boxes, sizes, pairs, texture


def test_merge_order_texture_size_fill_by_hand():
    boxes, sizes, pairs, texture = strip()
    colour = np.zeros((4, 1))
    # s = s_tex + s_size + s_fill. Adjacent single pixels: s_size = 1 - 2/4, s_fill = 1 - (2-2)/4.
    # (0,1): 1 + 0.5 + 1 = 2.5 ; (1,2): 0 + 0.5 + 1 = 1.5 ; (2,3): 0.5 + 0.5 + 1 = 2.0
    #  -> merge (0,1) = region 4 (size 2, t = [1, 0]); new pair (4,2): 0 + 0.25 + 1 = 1.25
    #  -> merge (2,3) = region 5 (size 2, t = [0.25, 0.75]); pair (5,4): 0.25 + 0 + 1 = 1.25
    merges, merged = hierarchical_grouping(boxes, sizes, colour, texture, pairs, "texture+size+fill", 4.0)
    np.testing.assert_array_equal(merges, [[0, 1], [2, 3], [5, 4]])
    np.testing.assert_array_equal(merged, [[0, 0, 1, 0], [2, 0, 3, 0], [0, 0, 3, 0]])


def test_merge_order_with_colour_and_the_tie_rule():
    boxes, sizes, pairs, texture = strip()
    colour = np.array([[1, 0], [0, 1], [0, 1], [0, 1]], np.float64)
    # add s_colour: (0,1) 0 -> 2.5 ; (1,2) 1 -> 2.5 ; (2,3) 1 -> 3.0: merge (2,3) = region 4
    # (c = [0, 1], t = [0.25, 0.75], box x 2..3). New pair (4,1): 1 + 0.25 + 0.25 + 1 = 2.5, an exact
    # tie with (0,1) = 2.5: the older candidate (0,1) goes first; (1,2) is gone with region 1.
    merges, merged = hierarchical_grouping(boxes, sizes, colour, texture, pairs, "colour+texture+size+fill", 4.0)
    np.testing.assert_array_equal(merges, [[2, 3], [0, 1], [5, 4]])
    np.testing.assert_array_equal(merged[0], [2, 0, 3, 0])


# -- priorities and ranking ---------------------------------------------------------------------------

def test_priorities_of_one_segmentation():
    # two regions side by side: each hierarchy has one merge (priority 1); the initial regions
    # share priority 2 (= #merges + 1); stable sort interleaves the hierarchies.
    img = np.zeros((30, 40, 3), np.uint8)
    img[:, 20:] = 255
    labels = np.zeros((30, 40), np.int64)
    labels[:, 20:] = 1
    boxes, prio = segmentation_boxes(img, "hsv", 50, NO_MIN, labels=labels)
    np.testing.assert_array_equal(prio, [1, 1, 2, 2])
    np.testing.assert_array_equal(boxes, [[0, 0, 39, 29], [0, 0, 39, 29], [0, 0, 19, 29], [20, 0, 39, 29]])
    # three regions in a row: 2 merges per hierarchy -> priorities 1, 1, 2, 2, then 3 x 3
    labels3 = np.repeat(np.arange(3), [10, 10, 20])[None].repeat(30, 0)
    _, prio3 = segmentation_boxes(img, "lab", 50, NO_MIN, labels=labels3)
    np.testing.assert_array_equal(prio3, [1, 1, 2, 2, 3, 3, 3])


def test_matlab_default_stream_is_randomstate_5489():
    # MATLAB: rng('default'); rand(5, 1) -> 0.8147 0.9058 0.1270 0.9134 0.6324 (its documented values)
    np.testing.assert_allclose(np.random.RandomState(SelectiveSearchConfig().seed).random_sample(5),
                               [0.8147, 0.9058, 0.1270, 0.9134, 0.6324], atol=5e-5)


def test_pseudo_random_ranking_with_a_fixed_seed_by_hand():
    boxes = np.array([[0, 0, 9, 9], [0, 0, 19, 19], [5, 5, 30, 30], [1, 1, 40, 40], [0, 0, 9, 9]], np.float64)
    prio = np.array([1, 1, 2, 2, 3], np.float64)
    # x rand = [0.8147, 0.9058, 0.1270, 0.9134, 0.6324] -> [0.8147, 0.9058, 0.2540, 1.8268, 1.8971]
    # ascending: 2, 0, 1, 3, 4 ; box 4 repeats box 0 (already placed) -> dropped
    out, p = rank_pool(boxes, prio, NO_MIN)
    np.testing.assert_array_equal(out, boxes[[2, 0, 1, 3]])
    np.testing.assert_allclose(p, [0.2540, 0.8147, 0.9058, 1.8268], atol=1e-4)
    # minBoxWidth = 20 (default): the 10 x 10 box goes as well
    out20, _ = rank_pool(boxes, prio, SelectiveSearchConfig())
    np.testing.assert_array_equal(out20, boxes[[2, 1, 3]])
    # "hierarchy" ranking: the positions alone, ties in pool order
    outh, ph = rank_pool(boxes, prio, dataclasses.replace(NO_MIN, ranking="hierarchy"))
    np.testing.assert_array_equal(outh, boxes[[0, 1, 2, 3]])
    np.testing.assert_array_equal(ph, [1, 1, 2, 2])


def test_config_rejects_unknown_values():
    with pytest.raises(ValueError, match="strategies"):
        SelectiveSearchConfig(strategies=("colour",))
    with pytest.raises(ValueError, match="ranking"):
        SelectiveSearchConfig(ranking="sorted")


# -- the method on real images ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def voc_image(voc_dir):
    from stl.io import read_image

    files = sorted((voc_dir / "VOC2007" / "JPEGImages").glob("*.jpg"))
    if not files:
        pytest.skip("no VOC images in ../shared")
    return files[0], read_image(files[0])


def test_selsearch_on_a_real_voc_image(voc_image, voc_dir):
    from stl.data.annotations import parse_xml_annotation

    path, img = voc_image
    ss = build_method("SELSEARCH")
    boxes, scores = ss.propose(img)
    h, w = img.shape[:2]
    assert len(boxes) > 300
    assert (np.diff(scores) <= 0).all()
    assert len(np.unique(boxes, axis=0)) == len(boxes)  # duplicates removed
    assert (boxes[:, 2] - boxes[:, 0] + 1 >= 20).all() and (boxes[:, 3] - boxes[:, 1] + 1 >= 20).all()
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= w - 1).all() and (boxes[:, 3] <= h - 1).all()
    assert [0, 0, w - 1, h - 1] in boxes.tolist()  # the last merge of every hierarchy
    # Selective Search reaches every object of a VOC image among its ~2000 boxes (IJCV: 98% recall)
    a = parse_xml_annotation(voc_dir / "VOC2007" / "Annotations" / (path.stem + ".xml"), one_based=True)
    gt_boxes = np.asarray(a["boxes"], np.float64)[~np.asarray(a["difficult"], bool)]
    assert (iou_matrix(gt_boxes, boxes).max(axis=1) >= 0.5).all()
    again = build_method("SELSEARCH").propose(img)
    assert np.array_equal(again[0], boxes) and np.array_equal(again[1], scores)
    other = build_method("SELSEARCH", seed=7).propose(img)
    assert sorted(map(tuple, other[0])) == sorted(map(tuple, boxes))  # same boxes, other order
    assert not np.array_equal(other[0], boxes)


def test_selsearch_tiny_and_gray_images():
    ss = build_method("SELSEARCH")
    for im in (np.zeros((1, 1, 3), np.uint8), np.full((3, 3), 200, np.uint8), np.zeros((20, 2, 3), np.uint8)):
        boxes, scores = ss.propose(im)
        assert boxes.shape[1] == 4 and len(boxes) == len(scores)  # boxes < 20 px are dropped: none left
    flat = np.full((25, 30), 90, np.uint8)  # one region: its box is the only one
    b, _ = ss.propose(flat)
    np.testing.assert_array_equal(b, [[0, 0, 29, 24]])


def test_selsearch_is_built_for_runs_and_stores_its_config(tmp_path):
    # stl run / fig3 build every method with build_run_method(..., config=STLConfig): SELSEARCH must not
    # take STL's config for its own (its option is ss_config); a stored run records the SS settings
    from stl.core.config import STLConfig
    from stl.data import get_dataset
    from stl.proposals import build_run_method
    from stl.runner import load_run, run_method

    m = build_run_method("SELSEARCH", lambda: None, STLConfig())
    assert m.config == SelectiveSearchConfig()
    ds = get_dataset("sample", limit=1)
    run_method(ds, m, tmp_path / "SELSEARCH.h5", method_name="SELSEARCH", progress=False)
    run = load_run(tmp_path / "SELSEARCH.h5")
    assert "min_box_width" in str(run.meta["method_config"]) and "pseudo_random" in str(run.meta["method_config"])
    assert len(run.boxes[ds.image_ids[0]]) > 10


def test_neighbour_pairs_agree_with_region_adjacency(voc_image):
    from stl.core.segmentation import felzenszwalb, region_adjacency

    labels = felzenszwalb(voc_image[1], "hsv", 50, 0.8)
    np.testing.assert_array_equal(neighbour_pairs(labels), np.argwhere(np.triu(region_adjacency(labels), 1)))
