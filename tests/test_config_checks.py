"""Every STLConfig field is checked in one place, its declaration (issue 21 item 5, issue 19 item 6).

The declarations in stl/core/config.py carry the checks (``Literal`` choices, a ``Range`` beside a
number, a ``Count`` beside a tuple); ``__post_init__`` applies them, so ``STLConfig(...)``,
``.replace``, ``--set`` and a stored config read back (``STLConfig.from_dict``) refuse the same
values with the same message. On 400d5c4 only the choice fields and ``wl_top_classes >= 1`` were
checked: ``nms_iou=nan``, ``ks=(-5,)``, ``ks=()``, NaN weights, ... were accepted.
"""
from __future__ import annotations

import dataclasses
import math
import typing

import numpy as np
import pytest

from stl.cli.args import apply_overrides, set_help
from stl.core.config import DEFAULT, PROFILES, SegmentationConfig, STLConfig, field_help

NAN, INF = float("nan"), float("inf")

BAD = [  # (field changes, what the message must name)
    (dict(nms_iou=NAN), "STLConfig.nms_iou must be a finite number"),
    (dict(nms_iou=INF), "STLConfig.nms_iou must be a finite number"),
    (dict(nms_iou=-1.0), "STLConfig.nms_iou must be a number in [0, 1]"),
    (dict(nms_iou=1.5), "STLConfig.nms_iou must be a number in [0, 1]"),
    (dict(similarity_weights=(NAN, 0.25, 0.25, 0.25)), "STLConfig.similarity_weights[0] must be a finite"),
    (dict(similarity_weights=(0.5, 0.5)), "STLConfig.similarity_weights must be 4 comma-separated"),
    (dict(similarity_weights=(1.0, -1.0, 0.0, 0.0)), "STLConfig.similarity_weights[1] must be a number >= 0"),
    (dict(wl_top_classes=0), "STLConfig.wl_top_classes must be a whole number in [1, "),
    (dict(wl_top_classes=2.5), "STLConfig.wl_top_classes must be a whole number"),
    (dict(wl_top_classes=True), "STLConfig.wl_top_classes must be a whole number"),
    (dict(drop_resolution=-1.0), "STLConfig.drop_resolution must be a number >= 0"),
    (dict(batch_size=-3), "STLConfig.batch_size must be a whole number in [1, "),
    (dict(batch_size=0), "STLConfig.batch_size must be a whole number in [1, "),
    (dict(mask_mode="blur"), "STLConfig.mask_mode must be one of box, segment; got 'blur'"),
    (dict(profile="mine"), "'mine'"),
    (dict(segmentation="hsv"), "STLConfig.segmentation must be a"),
]
SEG_BAD = [
    (dict(ks=(-5,)), "SegmentationConfig.ks[0] must be a whole number in [1, 2147483647]; got -5"),
    (dict(ks=()), "SegmentationConfig.ks must be comma-separated values, each a whole number"),
    (dict(ks=(10 ** 20,)), "SegmentationConfig.ks[0] must be a whole number in [1, 2147483647]"),
    (dict(ks=(50.0,)), "SegmentationConfig.ks[0] must be a whole number; got 50.0"),
    (dict(sigma=NAN), "SegmentationConfig.sigma must be a finite number"),
    (dict(sigma=-0.5), "SegmentationConfig.sigma must be a number >= 0"),
    (dict(min_box_side=-1), "SegmentationConfig.min_box_side must be a whole number in [0, "),
    (dict(color_spaces=("cmyk",)), "SegmentationConfig.color_spaces[0] must be one of hsv, lab, rgb"),
    (dict(color_spaces=()), "SegmentationConfig.color_spaces must be comma-separated values"),
]


@pytest.mark.parametrize("changes, message", BAD, ids=[str(c) for c, _ in BAD])
def test_api_replace_and_from_dict_refuse_alike(changes, message):
    with pytest.raises(ValueError) as e1:
        STLConfig(**changes)
    with pytest.raises(ValueError) as e2:
        DEFAULT.replace(**changes)
    stored = dict(DEFAULT.identity(), **{k: (dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v)
                                         for k, v in changes.items()})
    with pytest.raises(ValueError) as e3:
        STLConfig.from_dict(stored)
    for e in (e1, e2, e3):
        assert message in str(e.value), str(e.value)


@pytest.mark.parametrize("changes, message", SEG_BAD, ids=[str(c) for c, _ in SEG_BAD])
def test_segmentation_fields_refused_in_every_path(changes, message):
    with pytest.raises(ValueError) as e1:
        SegmentationConfig(**changes)
    with pytest.raises(ValueError) as e2:
        STLConfig.from_dict(dict(DEFAULT.identity(), segmentation=dict(DEFAULT.identity()["segmentation"],
                                                                      **{k: list(v) if isinstance(v, tuple) else v
                                                                         for k, v in changes.items()})))
    for e in (e1, e2):
        assert message in str(e.value), str(e.value)


@pytest.mark.parametrize("key, text, message", [
    ("nms_iou", "nan", "nms_iou must be a finite number"), ("nms_iou", "-1", "nms_iou must be a number in [0, 1]"),
    ("segmentation.ks", "-5", "ks[0] must be a whole number in [1, "), ("segmentation.ks", "", "ks must be"),
    ("segmentation.ks", "1e20", "expected int"), ("similarity_weights", "nan,0,0,0", "similarity_weights[0]"),
    ("batch_size", "-3", "batch_size"), ("segmentation.color_spaces", "cmyk", "one of hsv, lab, rgb"),
    ("segmentation.sigma", "nan", "sigma must be a finite number"),
    ("segmentation.min_box_side", "-1", "min_box_side"), ("drop_resolution", "-1", "drop_resolution")])
def test_set_refuses_through_the_same_check(key, text, message):
    with pytest.raises(ValueError) as e:
        apply_overrides(DEFAULT, {key: text})
    assert message in str(e.value)


def test_every_choice_field_is_a_literal_and_the_help_is_derived():
    for cls in (STLConfig, SegmentationConfig):
        hints = typing.get_type_hints(cls, include_extras=True)
        for f in dataclasses.fields(cls):
            h = hints[f.name]
            # no field is plain text: a choice is a Literal (its values are the checks and the help)
            assert h is not str, f"{cls.__name__}.{f.name} is declared str, not a Literal"
    assert PROFILES == ("authors", "corrected")
    with pytest.raises(ValueError, match="STLConfig.profile must be one of authors, corrected"):
        STLConfig(profile="mine")
    helps = dict(field_help(STLConfig))
    assert helps["mask_mode"] == "box|segment" and helps["nms_iou"] == "a number in [0, 1]"
    assert helps["segmentation.color_spaces"].startswith("comma-separated values, each hsv|lab|rgb")
    text = set_help()
    for key, desc in field_help(STLConfig):
        if key != "profile":
            assert f"{key}: {desc}".replace("%", "%%") in text


def test_good_values_pass_and_are_normalised():
    c = STLConfig(segmentation=SegmentationConfig(ks=[np.int64(50)], color_spaces=["rgb"]),
                  nms_iou=np.float32(0.25), similarity_weights=[1, 0, 0, 0], batch_size=np.int32(4))
    assert c.segmentation.ks == (50,) and type(c.segmentation.ks[0]) is int
    assert c.segmentation.color_spaces == ("rgb",) and c.similarity_weights == (1.0, 0.0, 0.0, 0.0)
    assert type(c.nms_iou) is float and c.batch_size == 4 and hash(c) == hash(c.replace())
    for profile in PROFILES:  # both profiles and their stored dicts round-trip
        p = STLConfig.for_profile(profile)
        assert STLConfig.from_dict(p.to_dict()) == p
        assert STLConfig.from_dict(p.identity()) == p.replace(batch_size=None)
    assert STLConfig(nms_iou=0.0).nms_iou == 0 and STLConfig(nms_iou=1).nms_iou == 1.0
    assert not math.isnan(STLConfig(drop_resolution=1e-4).drop_resolution)


def test_from_dict_refuses_unknown_and_malformed_stored_configs():
    with pytest.raises(ValueError, match="unknown STLConfig field.*nms_iuo"):
        STLConfig.from_dict(dict(DEFAULT.identity(), nms_iuo=0.3))
    with pytest.raises(ValueError, match="segmentation.k\\b"):
        STLConfig.from_dict(dict(DEFAULT.identity(), segmentation={"k": [50]}))
    with pytest.raises(ValueError, match="must be an object"):
        STLConfig.from_dict("box")
    with pytest.raises(ValueError, match="unknown profile"):
        STLConfig.from_dict({"profile": "mine"})


def test_wl_top_classes_beyond_the_classifier_is_refused_when_the_method_is_built():
    from stl.errors import OptionError
    from stl.proposals.stl_methods import STLMethod

    class Five:
        classes = ["a"] * 3

    with pytest.raises(OptionError, match="wl_top_classes=5 is more than the classifier's 3 classes"):
        STLMethod(Five(), DEFAULT)
    STLMethod(Five(), DEFAULT, class_level=True)  # STL-CL does not use the top classes
