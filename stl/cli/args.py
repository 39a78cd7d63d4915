"""The ONE argument module of the command line.

Every command takes its classifier and STL settings from the same options, added
here once, and turns the parsed namespace ONCE into typed values; only those travel
down into :mod:`stl.experiments`, the runner and the library:

* :func:`add_model_arguments` -> :func:`model_spec` (a :class:`stl.models.spec.ModelSpec`):
  ``--model NAME | PROTOTXT CAFFEMODEL``, ``--engine``, ``--device``, ``--precision``,
  ``--no-incremental``;
* :func:`add_config_arguments` -> :func:`stl_config` (a :class:`stl.core.config.STLConfig`):
  ``--profile {authors,corrected}`` then ``--set KEY=VALUE`` overrides of any STLConfig
  field, typed by the field (``--set nms_iou=0.3``, ``--set segmentation.ks=50,100``,
  ``--set batch_size=none``).

Commands with a config of their own (the detector experiments' DetectionConfig) receive the
``--set`` keys that are not STLConfig fields through :func:`split_overrides`, parsed by the same
rule (:func:`parse_field`: the type of the field the key names).

Every command of :data:`stl.cli.COMMANDS` that runs a classifier or STL adds its options with
:func:`add_common_arguments` (``tests/test_cli_args.py`` checks each one).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import typing
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from ..core.config import MAX_INT, PROFILES, SegmentationConfig, STLConfig
from ..models.spec import ModelSpec

if TYPE_CHECKING:  # pragma: no cover
    from ..executors import Executor


# ----------------------------------------------------------------------------- option value types
# argparse ``type=`` functions: a numeric option is checked when parsed (one line, exit 2), with the
# same bound as the settings (``stl.core.config.MAX_INT``: a value the store and OpenCV can hold).
def _number(text, kind, what):
    try:
        v = kind(text)
    except (TypeError, ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{what}, got {text!r}") from None
    if isinstance(v, float) and not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{what}, got {text!r}")
    return v


def _whole(text, low: int) -> int:
    what = f"must be a whole number in [{low}, {MAX_INT}]"
    v = _number(text, int, what)
    if not low <= v <= MAX_INT:
        raise argparse.ArgumentTypeError(f"{what}, got {text!r}")
    return v


def positive_int(text) -> int:
    """A whole number in [1, MAX_INT]."""
    return _whole(text, 1)


def nonnegative_int(text) -> int:
    """A whole number in [0, MAX_INT]."""
    return _whole(text, 0)


def nonnegative_float(text) -> float:
    """A finite number >= 0."""
    v = _number(text, float, "must be a finite number >= 0")
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return v


def unit_interval(text) -> float:
    """A number in (0, 1] (an IoU threshold, a fraction, a probability)."""
    v = _number(text, float, "must be a number in (0, 1]")
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text!r}")
    return v


def confidence_level(text) -> float:
    """A number strictly between 0 and 1 (a confidence level, e.g. 0.95)."""
    v = _number(text, float, "must be a number strictly between 0 and 1 (e.g. 0.95)")
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"must be a number strictly between 0 and 1 (e.g. 0.95), got {text!r}")
    return v


# ----------------------------------------------------------------------------- adding options
def add_model_arguments(p, default_model: str = "efficientnet_lite0", class_list_option: str = "--classes"):
    """The classifier's options. ``class_list_option``: the name of the class-list option (the
    detector experiments, whose ``--classes`` picks classes, call it ``--class-list``)."""
    g = p.add_argument_group("classifier")
    g.add_argument("--model", nargs="+", default=[default_model], metavar="NAME|PROTOTXT CAFFEMODEL|FILE.onnx",
                   help="registry name (efficientnet_lite0, caffenet, alexnet, squeezenet, caffenet_random), "
                        "a deploy prototxt and a caffemodel, an ONNX classifier FILE.onnx (ONNX Runtime; with "
                        "--mean --std [--classes --input-size]), or package.module:factory (a Python function "
                        "returning a torch module and its preprocessing, stl.models.torch_classifier)")
    g.add_argument("--engine", choices=["torch", "caffe", "onnx"], default="torch",
                   help="torch: PyTorch (CPU/CUDA, Caffe-exact for Caffe models); caffe: pycaffe; onnx: "
                        "efficientnet_lite0 exported to ONNX (cached under $STL_CACHE) in ONNX Runtime")
    g.add_argument(class_list_option, default=None, metavar="SYNSET_WORDS.txt", dest="class_list",
                   help="ONNX / factory models: the class list, one 'id words' line per output "
                        "(default: ImageNet's for 1000 outputs, else class_0, class_1, ...)")
    g.add_argument("--mean", type=float, nargs="+", default=None, metavar="V",
                   help="ONNX models: the per-channel mean subtracted from RGB pixels (1 or 3 values, 0..255, or "
                        "all as fractions of 255 with --std < 1: 0.485 0.456 0.406); also the mask colour")
    g.add_argument("--std", type=float, nargs="+", default=None, metavar="V",
                   help="ONNX models: the per-channel divisor after the mean (1 or 3 values, same units as --mean)")
    g.add_argument("--input-size", type=positive_int, nargs="+", default=None, metavar="N",
                   help="ONNX models: network input H W (or one side); needed when the file's is dynamic")
    g.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads of the classifier: ONNX Runtime's intra-op threads, torch's for the torch "
                        "engines (default $OMP_NUM_THREADS, else all cores); pycaffe: set OPENBLAS_NUM_THREADS")
    g.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    g.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                   help="fp32 is the reference; bf16 (CPU/GPU) and fp16 (GPU) are faster but change STL's "
                        "windows (top-10 agreement 20-50%% on real nets, docs/performance.md)")
    g.add_argument("--no-incremental", action="store_true",
                   help="run masked images through the whole net (default for Caffe nets in the torch "
                        "engine: recompute only the layer outputs the masked box can change)")


def add_config_arguments(p, extra_keys_help: str = ""):
    g = p.add_argument_group("STL settings")
    g.add_argument("--profile", choices=list(PROFILES), default="authors",
                   help="authors (default): the authors' public code bug for bug, which produced the "
                        "published numbers; corrected: the paper's text with clean conventions "
                        "(README: 'Where the paper's text and the authors' code differ')")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override an STLConfig field after --profile, typed and checked by the field "
                        "(e.g. nms_iou=0.3, segmentation.ks=50,100, batch_size=none): " + set_help()
                        + (f"; {extra_keys_help}" if extra_keys_help else "") + " (repeatable)")


def set_help() -> str:
    """The keys ``--set`` takes and what each value must be, derived from the STLConfig declarations
    (:func:`stl.core.config.field_help`)."""
    from ..core.config import field_help

    return "; ".join(f"{k}: {d}" for k, d in field_help(STLConfig) if k != "profile").replace("%", "%%")


def add_common_arguments(p, default_model: str = "efficientnet_lite0", class_list_option: str = "--classes"):
    """The classifier and the STL settings (every command that runs STL)."""
    add_model_arguments(p, default_model, class_list_option)
    add_config_arguments(p)


def add_data_arguments(p, ilsvrc: bool = True, voc: bool = False, limit_help: str = "first N images"):
    """The data and run-store options of the figure commands (``stl fig1/fig4/fig5/gallery/
    ablation/timing``), read by :func:`stl.experiments.common.ilsvrc_data` / ``voc_data``."""
    from ..experiments.common import DEFAULT_RUNS

    g = p.add_argument_group("data")
    if ilsvrc:
        g.add_argument("--ilsvrc", default=None,
                       help="ILSVRC-2012 val root (default $STL_ILSVRC / data/ilsvrc, else the ../shared sample)")
        g.add_argument("--ilsvrc-subset", default="200rnd", choices=["200rnd", "all"],
                       help="200rnd: the paper's 200 random classes (default); all: 1000 classes")
    if voc:
        g.add_argument("--voc", default=None,
                       help="VOCdevkit root (default $STL_VOC / data/VOCdevkit, else the ../shared sample)")
    g.add_argument("--limit", type=int, default=None, help=limit_help)
    g.add_argument("--runs", default=str(DEFAULT_RUNS),
                   help="stored runs (default results/runs, shared with `stl run` / `stl eval`)")
    add_progress_argument(g)


def add_progress_argument(p):
    """``--no-progress``; without it a command shows one bar per job (:mod:`stl.progress`)."""
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (default: on a terminal a bar per job with total, rate and ETA; "
                        "in a log a line every $STL_PROGRESS_INTERVAL seconds, default 30)")


# ----------------------------------------------------------------------------- image id lists
def read_id_file(path, option: str = "--images", word: Optional[str] = None) -> List[str]:
    """The image ids of a text file: one per line (stripped; blank lines and ``#`` comments skipped;
    UTF-8, with or without a byte-order mark). A file that cannot be read is an OptionError naming
    ``option`` and ``word`` (the file as typed, default ``path``)."""
    from ..errors import OptionError

    word = str(path) if word is None else word
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise OptionError(f"{option} {word}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise OptionError(f"{option} {word}: not a UTF-8 text file of image ids (one per line)") from None
    return [s for s in (line.strip() for line in lines) if s and not s.startswith("#")]


def expand_id_files(words, option: str = "--images", known=None) -> List[str]:
    """Image ids from the command line (``stl eval --images``, ``stl run --dataset D --images``): each
    word an id, or ``@FILE`` with one id per line (:func:`read_id_file`). With ``known`` (a dataset, or
    any container of the valid ids), a word that is not a known id but names a file is such a file too
    (``--images ids.txt``)."""
    from pathlib import Path

    ids: List[str] = []
    for w in words:
        if w.startswith("@") and len(w) > 1 and (known is None or w not in known):
            ids += read_id_file(w[1:], option, w)
        elif known is not None and w not in known and Path(w).is_file():
            ids += read_id_file(w, option)
        else:
            ids.append(w)
    return ids


# ----------------------------------------------------------------------------- namespace -> typed values
def model_spec(args) -> ModelSpec:
    """The :class:`ModelSpec` of ``--model/--engine/--device/--precision/--no-incremental``."""
    from ..models import ModelError

    try:
        opts = {k: getattr(args, "class_list" if k == "classes" else k, None) for k in ModelSpec.OPTION_FIELDS}
        for k in ("mean", "std", "input_size"):
            if opts[k] is not None:
                opts[k] = tuple(opts[k])
        if opts["threads"] is not None and opts["threads"] < 1:
            raise ModelError(f"--threads must be >= 1, not {opts['threads']}")
        return ModelSpec.from_words(args.model, engine=args.engine, device=args.device, precision=args.precision,
                                    incremental=not getattr(args, "no_incremental", False), **opts)
    except ModelError as e:
        raise SystemExit(str(e))


def parse_overrides(items) -> Dict[str, str]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": "1", "c": "x"}`` (values still text)."""
    out: Dict[str, str] = {}
    for item in items or ():
        if "=" not in item:
            raise SystemExit(f"--set takes KEY=VALUE, not {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def split_overrides(items) -> Tuple[Dict[str, str], Dict[str, str]]:
    """(STLConfig overrides, the others) of ``--set`` items."""
    stl_keys = {f.name for f in dataclasses.fields(STLConfig)}
    mine, rest = {}, {}
    for k, v in parse_overrides(items).items():
        (mine if k.split(".", 1)[0] in stl_keys else rest)[k] = v
    return mine, rest


def command_line(args) -> str:
    """The command line as typed (``stl eval A.h5 --md t.md``), for result files to record."""
    import shlex

    return "stl " + shlex.join(getattr(args, "argv", None) or [getattr(args, "command", "") or ""])


def stl_config(args, allow_other_keys: bool = False, defaults: Optional[Dict[str, object]] = None,
               **changes) -> STLConfig:
    """The STLConfig of ``--profile`` (default "authors"), then ``defaults`` (a command's own
    starting point, e.g. ``stl bench-scale``'s one cheap segmentation), then ``--set``
    overrides, then ``changes``. Unknown ``--set`` keys are an error naming the valid ones
    (unless ``allow_other_keys``: the command handles them, see :func:`split_overrides`)."""
    config = STLConfig.for_profile(getattr(args, "profile", None) or "authors", **(defaults or {}))
    mine, rest = split_overrides(getattr(args, "overrides", None))
    if rest and not allow_other_keys:
        raise SystemExit(f"--set: unknown STLConfig field(s) {', '.join(sorted(rest))}; valid: "
                         f"{', '.join(valid_keys())}")
    try:
        config = apply_overrides(config, mine)
    except ValueError as e:
        raise SystemExit(f"--set: {e}")
    return config.replace(**changes) if changes else config


def build_from_args(args, config: Optional[STLConfig] = None):
    """The classifier of ``--model/--engine/--device/--precision/--no-incremental``. Caffe models
    subtract the mean as ``config.caffe_mean`` says (default: the ``--profile``'s)."""
    config = config or stl_config(args)
    return model_spec(args).build(mean_mode=config.caffe_mean)


# ----------------------------------------------------------------------------- typed overrides
def valid_keys() -> List[str]:
    """Every key ``--set`` accepts for the STLConfig (nested ones dotted)."""
    keys = []
    for f in dataclasses.fields(STLConfig):
        if f.name == "segmentation":
            keys += [f"segmentation.{g.name}" for g in dataclasses.fields(SegmentationConfig)]
        elif f.name != "profile":
            keys.append(f.name)
    return keys


def apply_overrides(config, overrides: Dict[str, str]):
    """``config`` (a frozen dataclass) with ``{"a.b": "text"}`` applied, each value parsed with
    the type of its field: ``int``/``float``/``str``, ``bool`` (true/false/1/0/yes/no),
    ``Optional[...]`` (``none``), tuples (comma-separated). Nested dataclasses by dotted key."""
    for key, text in overrides.items():
        config = _set(config, key.split("."), text, key)
    return config


def _set(obj, parts, text, key):
    fields = {f.name: f for f in dataclasses.fields(obj)}
    name = parts[0]
    if name == "profile" and isinstance(obj, STLConfig):
        raise ValueError("the profile is chosen with --profile (it sets several fields), not --set")
    if name not in fields:
        valid = valid_keys() if isinstance(obj, STLConfig) else sorted(fields)
        raise ValueError(f"unknown field {key!r}; valid: {', '.join(valid)}")
    hint = typing.get_type_hints(type(obj), include_extras=True)[name]
    current = getattr(obj, name)
    if dataclasses.is_dataclass(current):
        if len(parts) == 1:
            raise ValueError(f"{key!r} is a group; set one of its fields ({key}.<field>)")
        return dataclasses.replace(obj, **{name: _set(current, parts[1:], text, key)})
    if len(parts) > 1:
        raise ValueError(f"{key!r}: {name} has no fields")
    return dataclasses.replace(obj, **{name: parse_value(text, hint, key)})


def parse_field(cls, key: str, text: str, _full: Optional[str] = None):
    """``text`` parsed with the type of the (dotted) field ``key`` of the dataclass ``cls``
    (the one ``--set`` rule, for a command's own config: ``data.num_classes=3`` -> 3)."""
    full = _full or key
    hints = typing.get_type_hints(cls)
    name, _, rest = key.partition(".")
    fields = {f.name for f in dataclasses.fields(cls)}
    if name not in fields:
        raise ValueError(f"unknown field {full!r}; valid: {', '.join(sorted(fields))}")
    hint = hints[name]
    if dataclasses.is_dataclass(hint):
        if not rest:
            raise ValueError(f"{full!r} is a group; set one of its fields ({full}.<field>)")
        return parse_field(hint, rest, text, full)
    if rest:
        raise ValueError(f"{full!r}: {name} has no fields")
    return parse_value(text, hint, full)


def parse_value(text: str, hint, key: str = "value"):
    """Text -> a value of type ``hint`` (see :func:`apply_overrides`)."""
    origin, targs = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:  # the declared Range / Count are checked by the config itself
        return parse_value(text, targs[0], key)
    if origin is typing.Literal:  # the choices are checked by the config itself
        return text.strip()
    if origin is typing.Union:
        inner = [a for a in targs if a is not type(None)]
        if text.strip().lower() in ("none", "null", ""):
            return None
        return parse_value(text, inner[0], key)
    if origin in (tuple, Tuple):
        parts = [t.strip() for t in text.split(",") if t.strip()]
        if len(targs) == 2 and targs[1] is Ellipsis:
            return tuple(parse_value(t, targs[0], key) for t in parts)
        if len(parts) != len(targs):
            raise ValueError(f"{key}: expected {len(targs)} comma-separated values, got {text!r}")
        return tuple(parse_value(t, a, key) for t, a in zip(parts, targs))
    if hint is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{key}: expected true or false, got {text!r}")
    if hint is float and "/" in text:  # a fraction, as the paper writes weights: 1/3 -> 1 / 3 exactly rounded
        import fractions

        try:
            return float(fractions.Fraction(text.strip()))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{key}: expected float (or a fraction like 1/3), got {text!r}") from None
    if hint in (int, float, str):
        try:
            return hint(text)
        except ValueError:
            raise ValueError(f"{key}: expected {hint.__name__}, got {text!r}") from None
    raise ValueError(f"{key}: cannot parse a {hint!r} from the command line")


# ----------------------------------------------------------------------------- executors (stl.executors)
def add_executor_arguments(p):
    """``--executor {local,ray} --address --workers --gpus-per-worker --threads-per-worker --max-retries``."""
    from ..executors import DEFAULT_MAX_RETRIES, EXECUTORS

    g = p.add_argument_group("executor (docs/scale.md)")
    g.add_argument("--executor", choices=EXECUTORS, default=None,
                   help="local (default): this process; ray: Ray workers on this machine or on a cluster "
                        "(--address)")
    g.add_argument("--address", default=None,
                   help="Ray cluster to join (`ray start --head` prints it; 'auto': the one on this node); "
                        "default: start a local Ray instance. Implies --executor ray")
    g.add_argument("--workers", type=positive_int, default=None,
                   help="Ray workers (default: CPUs / --threads-per-worker, or GPUs / --gpus-per-worker)")
    g.add_argument("--gpus-per-worker", type=nonnegative_float, default=0.0,
                   help="GPUs each Ray worker reserves (e.g. 1, or 0.5 to put two on a GPU); "
                        "> 0 runs the classifier on cuda")
    g.add_argument("--threads-per-worker", type=positive_int, default=None,
                   help="CPU threads (and Ray CPUs) per Ray worker (default 1); with --executor local: the "
                        "process's threads (default: all cores)")
    g.add_argument("--max-retries", type=nonnegative_int, default=DEFAULT_MAX_RETRIES,
                   help="times an image is retried after its worker died, before it is recorded as failed "
                        f"(default {DEFAULT_MAX_RETRIES})")
    return g


def executor_from_args(args) -> "Executor":
    """The :class:`Executor` the options ask for (``--executor local`` by default)."""
    kind = getattr(args, "executor", None) or ("ray" if getattr(args, "address", None) else "local")
    if kind == "local":
        for opt in ("workers", "address", "gpus_per_worker"):
            if getattr(args, opt, None):
                raise SystemExit(f"--{opt.replace('_', '-')} needs --executor ray")
        from ..executors.local import LocalExecutor

        return LocalExecutor(threads=getattr(args, "threads_per_worker", None))
    from ..executors.ray_executor import RayExecutor

    return RayExecutor(address=args.address, workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                       threads_per_worker=args.threads_per_worker or 1, max_retries=args.max_retries,
                       log_to_driver=bool(getattr(args, "verbose", False)))


# ----------------------------------------------------------------------------- confidence intervals
def add_ci_arguments(p, paired: bool = False):
    """``--ci LEVEL --resamples N --ci-seed S`` (and ``--paired``): per-image bootstrap intervals
    (:mod:`stl.evaluation.bootstrap`) of every reported figure."""
    from ..core.config import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED

    g = p.add_argument_group("confidence intervals (per-image bootstrap, percentile method)")
    g.add_argument("--ci", type=confidence_level, default=None, metavar="LEVEL",
                   help="add a bootstrap interval at this level (e.g. 0.95) to every figure: images resampled "
                        "with replacement, the figure recomputed on each resample")
    g.add_argument("--resamples", type=positive_int, default=BOOTSTRAP_RESAMPLES, metavar="N",
                   help=f"bootstrap resamples (default {BOOTSTRAP_RESAMPLES})")
    g.add_argument("--ci-seed", type=nonnegative_int, default=BOOTSTRAP_SEED, metavar="SEED",
                   help=f"seed of the resampling (default {BOOTSTRAP_SEED}; same seed, same intervals)")
    if paired:
        g.add_argument("--paired", action="store_true",
                       help="with two runs A B of the same images: the difference A - B of every figure on "
                            "the images both evaluate, with its interval (--ci LEVEL, default 0.95)")
    return g


def ci_settings(args, default_level: Optional[float] = None) -> Optional[Tuple[float, int, int]]:
    """(level, resamples, seed) of :func:`add_ci_arguments`' options, or None without ``--ci``
    (``default_level`` is used when ``--ci`` is absent, e.g. 0.95 for ``--paired``)."""
    level = getattr(args, "ci", None) or default_level
    if level is None:
        return None
    return float(level), int(args.resamples), int(args.ci_seed)
