"""stl/cli/args.py: one set of classifier/STL options on every command, typed --set overrides,
and the namespace turned once into a ModelSpec and an STLConfig (no subprocess, no model)."""
import pytest

from stl.cli import build_parser
from stl.cli.args import apply_overrides, model_spec, parse_value, split_overrides, stl_config, valid_keys
from stl.core.config import DEFAULT, STLConfig
from stl.models.spec import ModelSpec

STL_COMMANDS = ("localize", "demo", "run", "bench", "fig3", "table", "fig6", "stl650")
NEEDS = {"localize": ["x.png"], "run": ["--dataset", "sample", "--method", "CENTER"], "table": ["1"]}


def parse(command, *argv):
    parser, _ = build_parser()
    return parser.parse_args([command, *NEEDS.get(command, []), *argv])


@pytest.mark.parametrize("command", STL_COMMANDS)
def test_every_stl_command_has_the_same_model_and_config_options(command):
    args = parse(command, "--model", "a.prototxt", "b.caffemodel", "--engine", "caffe", "--device", "cuda:1",
                 "--precision", "bf16", "--no-incremental", "--profile", "corrected",
                 "--set", "nms_iou=0.3", "--set", "segmentation.ks=50,100,200")
    assert model_spec(args) == ModelSpec(("a.prototxt", "b.caffemodel"), "caffe", "cuda:1", "bf16", False)
    cfg = stl_config(args, allow_other_keys=True)
    assert cfg == STLConfig.for_profile("corrected").replace(
        nms_iou=0.3, segmentation=DEFAULT.segmentation.__class__(ks=(50, 100, 200)))
    assert isinstance(cfg.nms_iou, float) and cfg.segmentation.ks == (50, 100, 200)


@pytest.mark.parametrize("command", STL_COMMANDS)
def test_defaults_are_the_paper_settings(command):
    args = parse(command)
    assert model_spec(args) == ModelSpec()
    assert stl_config(args) == DEFAULT


def test_values_are_parsed_with_the_field_type():
    cfg = apply_overrides(DEFAULT, {"batch_size": "8", "wl_top_classes": "3", "similarity_weights": "1,0,0,0",
                                    "segmentation.color_spaces": "hsv", "segmentation.sigma": "0.5",
                                    "mask_mode": "segment"})
    assert cfg.batch_size == 8 and cfg.wl_top_classes == 3
    assert cfg.similarity_weights == (1.0, 0.0, 0.0, 0.0) and all(isinstance(w, float) for w in cfg.similarity_weights)
    assert cfg.segmentation.color_spaces == ("hsv",) and cfg.segmentation.sigma == 0.5
    assert cfg.mask_mode == "segment"
    assert apply_overrides(cfg, {"batch_size": "none"}).batch_size is None
    assert parse_value("yes", bool) is True and parse_value("0", bool) is False


def test_bad_overrides_are_errors_that_name_the_valid_keys():
    with pytest.raises(ValueError, match=r"unknown field 'nms_iuo'; valid: .*segmentation\.ks.*nms_iou"):
        apply_overrides(DEFAULT, {"nms_iuo": "0.3"})
    with pytest.raises(ValueError, match=r"expected int, got 'many'"):
        apply_overrides(DEFAULT, {"wl_top_classes": "many"})
    with pytest.raises(ValueError, match="must be one of box, segment"):  # STLConfig's own check
        apply_overrides(DEFAULT, {"mask_mode": "boxes"})
    with pytest.raises(ValueError, match="expected 4 comma-separated values"):
        apply_overrides(DEFAULT, {"similarity_weights": "1,0"})
    with pytest.raises(ValueError, match="--profile"):
        apply_overrides(DEFAULT, {"profile": "corrected"})
    with pytest.raises(ValueError, match="is a group"):
        apply_overrides(DEFAULT, {"segmentation": "x"})
    with pytest.raises(SystemExit, match="unknown STLConfig field.*data.num_classes"):
        stl_config(parse("fig3", "--set", "data.num_classes=3"))
    assert "profile" not in valid_keys() and "segmentation.min_box_side" in valid_keys()


def test_detection_commands_route_other_keys_to_the_detection_config():
    from stl.cli.detection_args import detection_options

    args = parse("table", "--set", "data.num_classes=3", "--set", "nms_iou=0.4", "--set", "svm.folds=2",
                 "--classes", "n01440764,n01443537", "--fast", "--model", "caffenet", "--pairs", "A+B, C+D")
    assert split_overrides(args.overrides) == ({"nms_iou": "0.4"}, {"data.num_classes": "3", "svm.folds": "2"})
    opts = detection_options(args)
    assert opts.overrides == {"data.num_classes": 3, "svm.folds": 2}  # JSON values as before
    assert opts.stl == DEFAULT.replace(nms_iou=0.4) and opts.model == ModelSpec("caffenet")
    assert opts.classes == ["n01440764", "n01443537"] and opts.fast and opts.pairs == ["A+B", "C+D"]
    # the detection config's segmentation (--fast) goes on top of the command's STLConfig
    from stl.detection.config import FAST_STL, DetectionConfig

    stl = DetectionConfig().replace(**FAST_STL).stl_config(opts.stl)
    assert stl.nms_iou == 0.4 and stl.segmentation.ks == (300,) and stl.segmentation.color_spaces == ("hsv",)


def test_model_spec_words():
    assert ModelSpec.from_words(["caffenet"]).name == "caffenet"
    assert str(ModelSpec.from_words(["a.prototxt", "b.caffemodel"])) == "a.prototxt:b.caffemodel"
    with pytest.raises(SystemExit, match="NAME or a PROTOTXT CAFFEMODEL"):
        model_spec(parse("fig3", "--model", "a", "b", "c"))
