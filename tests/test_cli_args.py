"""stl/cli/args.py: one set of classifier/STL options on every command, typed --set overrides,
and the namespace turned once into a ModelSpec and an STLConfig (no subprocess, no model)."""
import pytest

from stl.cli import COMMANDS, build_parser
from stl.cli.args import apply_overrides, model_spec, parse_value, split_overrides, stl_config, valid_keys
from stl.core.config import DEFAULT, STLConfig
from stl.models.spec import ModelSpec

#: the commands that run no classifier (they read stored runs, or plot Eq. 4); every other
#: command of stl.cli.COMMANDS runs a classifier or STL and takes the same options
NO_CLASSIFIER = ("eval", "eval-profiles", "diff", "fig2", "export")
STL_COMMANDS = tuple(c for c in COMMANDS if c not in NO_CLASSIFIER)
NEEDS = {"localize": ["x.png"], "run": ["--dataset", "sample", "--method", "CENTER"], "table": ["1"],
         "eval": ["x.h5"], "eval-profiles": ["x.h5"], "diff": ["a.h5", "b.h5"], "export": ["x.h5", "--format", "csv"]}


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


def test_the_command_list_is_every_command(capsys):
    assert len(STL_COMMANDS) == 16 and set(STL_COMMANDS) | set(NO_CLASSIFIER) == set(COMMANDS)
    for command in NO_CLASSIFIER:  # they really take no classifier options
        parse(command)
        with pytest.raises(SystemExit):
            parse(command, "--model", "caffenet")
        assert "unrecognized arguments: --model caffenet" in capsys.readouterr().err


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
    # fractions, as the paper writes the ablation's weights: exactly the float of 1 / 3
    nosdrop = apply_overrides(DEFAULT, {"similarity_weights": "0,1/3,1/3,1/3"})
    assert nosdrop.similarity_weights == (0.0, 1 / 3, 1 / 3, 1 / 3)
    assert nosdrop.identity() == DEFAULT.replace(similarity_weights=(0.0, 1 / 3, 1 / 3, 1 / 3)).identity()
    for bad in ("1/0", "1/x", "1//3"):
        with pytest.raises(ValueError, match="a fraction like 1/3"):
            parse_value(bad, float, "nms_iou")


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


def test_detection_set_values_follow_the_field_type():
    from stl.cli.detection_args import detection_options

    opts = detection_options(parse("table", "--set", "svm.default_c=1", "--set", "stl_ks=300", "--set",
                                   "max_detections_per_image=none"))
    assert opts.overrides == {"svm.default_c": 1.0, "stl_ks": (300,), "max_detections_per_image": None}
    assert isinstance(opts.overrides["svm.default_c"], float)
    with pytest.raises(SystemExit, match="unknown field 'svm.folds_'"):
        detection_options(parse("table", "--set", "svm.folds_=2"))


def test_bench_scale_starts_from_its_cheap_segmentation_then_set():
    from stl.experiments.bench_scale import scale_config

    defaults = {"segmentation": scale_config().segmentation}
    cfg = stl_config(parse("bench-scale"), defaults=defaults)
    assert cfg.segmentation.ks == (500,) and cfg.segmentation.color_spaces == ("hsv",) and cfg.profile == "authors"
    cfg = stl_config(parse("bench-scale", "--profile", "corrected", "--set", "segmentation.ks=50,100"),
                     defaults=defaults)
    assert cfg.segmentation.ks == (50, 100) and cfg.profile == "corrected" and cfg.caffe_mean == "image"


@pytest.mark.parametrize("command,module,function", [
    ("fig1", "stl.experiments.maskout", "run_maskout"), ("fig5", "stl.experiments.maskout", "run_maskout"),
    ("gallery", "stl.experiments.gallery", "run_gallery"), ("fig4", "stl.experiments.fig4", "run_fig4"),
    ("ablation", "stl.experiments.ablation", "run_ablation"), ("timing", "stl.experiments.timing", "time_methods")])
def test_figure_commands_hand_the_profile_and_model_down(command, module, function, monkeypatch, shared_dir):
    """--profile/--set/--model reach the experiment (and the lazily built classifier's mean), not just the parser."""
    import importlib

    seen = {}

    class Stop(Exception):
        pass

    def fake(*a, **kw):
        seen["args"], seen["kw"] = a, kw
        raise Stop

    monkeypatch.setattr(importlib.import_module(module), function, fake)
    parser, modules = build_parser()
    args = parser.parse_args([command, "--model", "squeezenet", "--profile", "corrected", "--set", "nms_iou=0.3",
                              "--limit", "1", "--runs", "unused"])
    with pytest.raises(Stop):
        modules[command].main(args)
    want = STLConfig.for_profile("corrected").replace(nms_iou=0.3)
    values = list(seen["args"]) + list(seen["kw"].values())
    assert want in values  # the STLConfig
    lazy = [v for v in values if hasattr(v, "preprocessing_identity")]
    specs = [v for v in values if isinstance(v, ModelSpec)]
    assert lazy or specs
    for v in lazy:
        assert v.preprocessing_identity() == {"precision": "fp32", "caffe_mean": "image"}  # corrected's mean
    for v in specs:
        assert v == ModelSpec("squeezenet")


def test_threads_is_every_engines_cpu_threads(monkeypatch):
    """--threads: ONNX Runtime's threads for ONNX models, torch's for the torch engines (it used to be
    refused there), one clear line for pycaffe (its BLAS decides)."""
    import torch

    from stl.models.base import ModelError

    monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))
    before = torch.get_num_threads()
    try:
        args = parse("localize", "--model", "caffenet_random", "--threads", "1")
        clf = model_spec(args).build()
        assert torch.get_num_threads() == 1 and type(clf).__name__ == "TorchCaffeClassifier"
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ModelError, match="OPENBLAS_NUM_THREADS"):
        model_spec(parse("localize", "--model", "caffenet_random", "--engine", "caffe", "--threads", "2")).build()
