"""The ``stl`` command line. Each subcommand lives in ``stl/commands/<name>.py``
and provides ``add_arguments(parser)`` and ``main(args) -> int``."""
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
    "wsol": "STL vs CAM / Grad-CAM / RISE on the WSOL benchmark's metrics (MaxBoxAccV2, ...)",
}


def main(argv=None) -> int:
    os.environ.setdefault("GLOG_minloglevel", "2")
    parser = argparse.ArgumentParser(prog="stl", description="Self-Taught Object Localization")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    modules = {}
    for name, help_text in COMMANDS.items():
        try:
            mod = importlib.import_module(f"stl.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"stl.commands.{name}":
                raise
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(p)
        modules[name] = mod
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    return int(modules[args.command].main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
