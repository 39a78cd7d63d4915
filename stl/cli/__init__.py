"""The ``stl`` command line. Each subcommand lives in ``stl/cli/<name>.py``
and provides ``add_arguments(parser)`` and ``main(args) -> int``.

Exit codes (README, "Exit codes"): 0 success; 1 some images failed (the
others were finished and saved; the failures are listed); 2 a user error
(bad option, file, folder, dataset root, ...): one line ``stl: error: ...`` on
stderr, the traceback only with ``stl -v``; 130 interrupted (Ctrl-C, finished
images are saved); 70 an internal error (a bug: rerun with ``-v`` and report
the traceback).
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
    "bench": "speed benchmark of the STL engine",
    "diff": "how many top-N windows differ between two stored runs (e.g. the two profiles)",
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


def main(argv=None) -> int:
    os.environ.setdefault("GLOG_minloglevel", "2")
    parser = Parser(prog="stl", description="Self-Taught Object Localization")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging; tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True)
    modules = {}
    for name, help_text in COMMANDS.items():
        try:
            mod = importlib.import_module(f"stl.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"stl.cli.{name}":
                raise
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(p)
        modules[name] = mod
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return int(modules[args.command].main(args) or 0)
    except KeyboardInterrupt:
        if args.verbose:
            raise
        print("stl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as e:  # a command's own `raise SystemExit("message")`
        if isinstance(e.code, str):
            print(f"stl: error: {e.code}", file=sys.stderr)
            return EXIT_USAGE
        raise
    except Exception as e:
        from ..errors import one_line

        if args.verbose:
            raise
        if isinstance(e, user_error_types()):
            print(f"stl: error: {one_line(e)}", file=sys.stderr)
            return EXIT_USAGE
        print(f"stl: internal error: {type(e).__name__}: {one_line(e)} (a bug: rerun with `stl -v "
              f"{args.command} ...` for the traceback and report it)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
