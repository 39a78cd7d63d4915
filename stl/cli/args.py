"""Arguments shared by subcommands that need a classifier."""
from __future__ import annotations


def add_model_arguments(p, default_model="efficientnet_lite0"):
    p.add_argument("--model", nargs="+", default=[default_model], metavar="NAME|PROTOTXT CAFFEMODEL",
                   help="registry name (efficientnet_lite0, caffenet, alexnet, squeezenet, caffenet_random) "
                        "or a deploy prototxt and a caffemodel")
    p.add_argument("--engine", choices=["torch", "caffe"], default="torch",
                   help="torch: PyTorch (CPU/CUDA, Caffe-exact for Caffe models); caffe: pycaffe")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                   help="fp32 is the reference; bf16 (CPU/GPU) and fp16 (GPU) are faster but change STL's "
                        "windows (top-10 agreement 20-50%% on real nets, docs/performance.md)")
    p.add_argument("--profile", choices=["authors", "corrected"], default="authors",
                   help="authors (default): the authors' public code bug for bug, which produced the "
                        "published numbers; corrected: the paper's text with clean conventions "
                        "(README: 'Where the paper's text and the authors' code differ')")
    p.add_argument("--no-incremental", action="store_true",
                   help="run masked images through the whole net (default for Caffe nets in the torch "
                        "engine: recompute only the layer outputs the masked box can change)")


def stl_config_from_args(args, **changes):
    """The STLConfig of ``--profile`` (default "authors"), then ``changes``."""
    from ..core.config import STLConfig

    return STLConfig.for_profile(getattr(args, "profile", None) or "authors", **changes)


def build_from_args(args, config=None):
    """The classifier of ``--model/--engine/--device/--precision``. Caffe models subtract the
    mean as ``config.caffe_mean`` says (default: the ``--profile``'s)."""
    from ..models import build_classifier

    config = config or stl_config_from_args(args)
    model = args.model
    name = tuple(model) if len(model) == 2 else model[0]
    if len(model) > 2:
        raise SystemExit("--model takes a NAME or a PROTOTXT CAFFEMODEL pair")
    kwargs = {}
    if name != "efficientnet_lite0":  # every other model is a Caffe model
        kwargs["mean_mode"] = config.caffe_mean
    clf = build_classifier(name, engine=args.engine, device=args.device, precision=args.precision, **kwargs)
    if getattr(args, "no_incremental", False) and hasattr(clf, "incremental_masking"):
        clf.incremental_masking = False
    return clf
