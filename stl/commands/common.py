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
    p.add_argument("--no-incremental", action="store_true",
                   help="run masked images through the whole net (default for Caffe nets in the torch "
                        "engine: recompute only the layer outputs the masked box can change)")


def build_from_args(args):
    from ..modeling import build_classifier

    model = args.model
    name = tuple(model) if len(model) == 2 else model[0]
    if len(model) > 2:
        raise SystemExit("--model takes a NAME or a PROTOTXT CAFFEMODEL pair")
    clf = build_classifier(name, engine=args.engine, device=args.device, precision=args.precision)
    if getattr(args, "no_incremental", False) and hasattr(clf, "incremental_masking"):
        clf.incremental_masking = False
    return clf
