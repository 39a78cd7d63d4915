"""Models and methods declare traits at registration; callers read them, never the name."""
from stl.models import model_traits
from stl.models.spec import ModelSpec
from stl.models.zoo import LITE0_LAYERS


def test_models_declare_what_they_are():
    for name in ("caffenet", "alexnet", "squeezenet", "caffenet_random"):
        assert model_traits(name) == {"caffe": True, "layers": None} and ModelSpec(name).is_caffe
    assert model_traits("EfficientNet-Lite0") == {"caffe": False, "layers": LITE0_LAYERS}
    assert not ModelSpec("efficientnet_lite0").is_caffe
    assert ModelSpec(("a.prototxt", "b.caffemodel")).is_caffe and model_traits("a.prototxt:b.caffemodel")["caffe"]
    assert model_traits("nosuchnet") == {"caffe": False, "layers": None}  # building it is the error


def test_maskout_reads_the_layers_from_the_registration(lite0):
    from stl.experiments.maskout import default_layers, hooked_layers

    assert hooked_layers(lite0) == LITE0_LAYERS and default_layers(lite0) == list(LITE0_LAYERS)


def test_method_spec_asks_the_registry():
    from stl.executors import MethodSpec

    t = MethodSpec.for_method("STL-CL").traits()
    assert t["uses_classifier"] and t["needs_label"] and t["takes_config"]
    t = MethodSpec.for_method("CENTER").traits()
    assert not t["uses_classifier"] and not t["takes_config"]
