"""stl.registry (one key rule for models, methods, datasets) and stl.paths / stl.resources."""
from __future__ import annotations

from pathlib import Path

import pytest

from stl import paths, resources
from stl.registry import Registry, UnknownName, check_options, normalize


def test_one_key_rule_and_canonical_names():
    r = Registry("thing")
    r.register("STL-WL", 1)
    r.register("voc2007_test", 2, subset="test")
    assert normalize(" Stl_Wl ") == normalize("STL-WL") == "stl_wl"
    assert r.get("stl_wl") == r.get("Stl-Wl") == 1
    assert r.get("VOC2007-TEST") == 2 and r.info("voc2007-test") == {"subset": "test"}
    assert r.canonical("stl_wl") == "STL-WL"
    assert r.names() == ["STL-WL", "voc2007_test"]
    with pytest.raises(KeyError, match="registered twice"):
        r.register("stl_wl", 3)  # the same key under another spelling
    with pytest.raises(UnknownName) as e:
        r.get("stl-cl")
    assert str(e.value) == "unknown thing 'stl-cl'; known: STL-WL, voc2007_test"


def test_builtin_modules_load_on_first_lookup():
    r = Registry("x", builtin=("stl.nonexistent_module_for_test",))
    with pytest.raises(ModuleNotFoundError):
        r.names()


def test_the_three_registries_share_the_rule():
    from stl.data import DATASETS, get_dataset
    from stl.models import MODELS
    from stl.proposals import METHODS, build_method

    for reg in (DATASETS, MODELS, METHODS):
        assert isinstance(reg, Registry)
    assert "STL-CL" in METHODS and "stl_cl" in METHODS
    assert {"caffenet", "efficientnet_lite0", "squeezenet"} <= set(MODELS.names())
    assert get_dataset("SAMPLE").image_ids == get_dataset("sample").image_ids
    assert build_method("whole_image").name == build_method("WHOLE-IMAGE").name
    with pytest.raises(KeyError, match="known: .*CENTER"):
        build_method("no-such-method")


def test_check_options_names_the_valid_ones():
    check_options("M", {"a": 1}, ["a", "b"])
    with pytest.raises(TypeError, match=r"M: unknown option\(s\) 'c'; valid: a, b"):
        check_options("M", {"a": 1, "c": 2}, ["b", "a"])


def test_resources_are_package_files():
    pkg = Path(paths.__file__).parent
    ref = resources.path(*resources.PAPER_REFERENCE)
    assert ref.is_file() and pkg in ref.parents
    assert "curves" in resources.read_json(*resources.PAPER_REFERENCE)
    assert resources.config("detection_shared").is_file()
    assert resources.deploy_prototxt("bvlc_alexnet").read_text().startswith('name: "AlexNet"')
    assert len(resources.read_json(*resources.SAMPLE_ANNOTATIONS)["images"]) == 5


def test_environment_paths(monkeypatch, tmp_path):
    for var in ("STL_SHARED", "STL_WEIGHTS", "STL_CACHE"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    assert paths.shared_dir() == (tmp_path / "stl_shared").resolve()
    assert paths.weights_dir() == tmp_path / "stl_weights"
    assert paths.cache_dir() == tmp_path / "stl_cache"
    for var in ("STL_SHARED", "STL_WEIGHTS", "STL_CACHE"):
        monkeypatch.delenv(var)
    repo = paths.source_checkout()
    assert repo is not None and (repo / "pyproject.toml").is_file()  # the tests run from the checkout
    assert paths.weights_dir() == repo / "models" / "weights"
    assert paths.cache_dir() == repo / ".cache" / "models"
    assert paths.shared_dir() == (repo.parent / "shared").resolve()
    # an installed wheel: no checkout, the XDG folders
    monkeypatch.setattr(paths, "source_checkout", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xc"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xd"))
    assert paths.cache_dir() == tmp_path / "xc" / "stl" / "models"
    assert paths.weights_dir() == tmp_path / "xd" / "stl" / "weights"
    assert paths.dataset_links(("data/ilsvrc",)) == []


def test_no_module_reaches_for_the_repository():
    """Only stl/paths.py may know where the checkout is."""
    pkg = Path(paths.__file__).parent
    offenders = [str(p.relative_to(pkg)) for p in pkg.rglob("*.py")
                 if "parents[" in p.read_text() and p.name != "paths.py"]
    assert offenders == []
