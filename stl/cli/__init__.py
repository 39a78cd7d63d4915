"""The ``stl`` command line. Each subcommand lives in ``stl/cli/<name>.py``
and provides ``add_arguments(parser)`` and ``main(args) -> int``.

Exit codes (README, "Exit codes"): 0 success; 1 some images failed (the
others were finished and saved; the failures are listed); 2 a user error
(bad option, file, folder, dataset root, ...): one line ``stl: error: ...`` on
stderr, the traceback only with ``stl -v``; 130 interrupted (Ctrl-C, finished
images are saved); 70 an internal error (a bug: rerun with ``-v`` and report
the traceback). ``stl -v`` adds the traceback and keeps the exit code.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

#: subcommand -> one-line help
COMMANDS = {
    "localize": "run STL-CL / STL-WL on image files; print and draw the top windows",
    "demo": "STL-WL and STL-CL with the bundled EfficientNet-Lite0 on the bundled sample images",
    "run": "compute a proposal method over a dataset (HDF5, resumable)",
    "eval": "recall/precision table of stored runs, against the paper's numbers",
    "export": "a stored run's windows as COCO, detectron2, mmdetection, Fast R-CNN .mat, VOC text or CSV",
    "bench": "speed benchmark of the STL engine (--detection: of the detector experiments)",
    "fig3": "Figure 3: recall/precision vs number of windows, ours and the paper's",
    "table": "Table 1 or 2: mAP of detectors trained on each method's boxes (stl table 1|2)",
    "fig6": "Figure 6: per-class AP, STL-CL-trained vs ground-truth-trained detectors",
    "stl650": "STL-CL/STL-WL vs WHOLE-IMAGE and CENTER on the 650 real ILSVRC images of ../shared",
    "eval-profiles": "each field of the evaluation protocol (authors vs corrected) on stored runs",
    "diff": "how many top-N windows differ between two stored runs (e.g. the two profiles)",
    "wsol": "STL vs CAM / Grad-CAM / RISE on the WSOL benchmark's metrics (MaxBoxAccV2, ...)",
    "bench-scale": "images/s of the local executor vs Ray workers, Ray's start-up and per-image overhead",
    "fig1": "Fig. 1 / supp. Fig. 1: the mask-out operation through the network's layers",
    "fig2": "Fig. 2: the s_drop surface of Eq. 4",
    "fig4": "Fig. 4: cross-dataset generalisation (PASCAL vs ILSVRC class prototypes)",
    "fig5": "Fig. 5 / supp. Fig. 2: failure cases (lowest max-drop images) through the layers",
    "gallery": "supp. Table 1: top-1 boxes of STL-CL and SELSEARCH beside the ground truth",
    "ablation": "s_drop ablation and the other STL switches (recall/precision at N = 1, 5, 10, 100)",
    "timing": "seconds and network evaluations per image of every registered method vs the paper",
}

EXIT_OK, EXIT_FAILED_IMAGES, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 70, 130


class Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line ``stl: error: ...`` (exit 2) instead of usage + error."""

    def error(self, message):
        where = self.prog[len("stl "):] if self.prog.startswith("stl ") else ""
        self.exit(EXIT_USAGE, f"stl: error: {where + ': ' if where else ''}{message} (see `{self.prog} --help`)\n")


def user_error_types() -> tuple:
    """Exceptions that are the user's input, not a bug: one line, exit 2."""
    from ..errors import UserError
    from ..registry import UnknownName

    types = [UserError, UnknownName, OSError]
    try:
        from ..models.base import ModelError

        types.append(ModelError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def _version() -> str:
    from pathlib import Path

    import stl

    return f"stl {stl.__version__} ({Path(stl.__file__).resolve().parent})"


def build_parser():
    """The ``stl`` parser and ``{command: module}``."""
    parser = Parser(prog="stl", description="Self-Taught Object Localization")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging; tracebacks of errors")
    parser.add_argument("--version", action="version", version=_version(),
                        help="print the version and where the package is installed")
    sub = parser.add_subparsers(dest="command", required=True)
    modules = {}
    for name, help_text in COMMANDS.items():
        mod = importlib.import_module(f"stl.cli.{name.replace('-', '_')}")
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(p)
        modules[name] = mod
    return parser, modules


def _tolerant_streams():
    """Text that the terminal's encoding cannot show (``PYTHONIOENCODING=ascii`` and a non-ASCII
    image id) is escaped, not an error after the work is done."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # pragma: no cover - a closed or odd stream
                pass


def main(argv=None) -> int:
    """Run one command; the exit code is the same with and without ``-v`` (which adds the
    traceback of an error): 2 for a user error, 70 for a bug, 130 for an interrupt."""
    import traceback

    os.environ.setdefault("GLOG_minloglevel", "2")
    _tolerant_streams()
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what result files record (command_line)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return int(modules[args.command].main(args) or 0)
    except KeyboardInterrupt:
        if args.verbose:
            traceback.print_exc()
        print("stl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as e:  # a command's own `raise SystemExit("message")`
        if isinstance(e.code, str):
            if args.verbose:
                traceback.print_exc()
            print(f"stl: error: {e.code}", file=sys.stderr)
            return EXIT_USAGE
        raise
    except Exception as e:
        from ..errors import one_line

        if args.verbose:
            traceback.print_exc()
        if isinstance(e, user_error_types()):
            print(f"stl: error: {one_line(e)}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(e, MemoryError):  # e.g. a prototxt whose input is 60000x60000
            print(f"stl: error: out of memory ({one_line(e) or 'MemoryError'}): a smaller input, model or "
                  f"--set batch_size=N", file=sys.stderr)
            return EXIT_USAGE
        print(f"stl: internal error: {type(e).__name__}: {one_line(e)} (a bug: rerun with `stl -v "
              f"{args.command} ...` for the traceback and report it)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
