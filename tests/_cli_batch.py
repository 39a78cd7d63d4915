"""Run many `stl` command lines in ONE Python process (each as `stl.cli.main(argv)`, with its own
captured stdout/stderr and a fresh logging handler), so a test can try hundreds of inputs through
the real command line quickly. Usage: python tests/_cli_batch.py CASES.json RESULTS.json

CASES.json: [{"id": ..., "argv": [...], "before": optional python code run first, "env": optional
{VAR: value} set for that case only}]; RESULTS.json:
[{"id", "rc", "stdout", "stderr"}]. An exception escaping main() is written to stderr as the
traceback the real `stl` process would print (and rc 1), so the caller sees it."""
import contextlib
import io
import json
import logging
import os
import sys
import traceback


def run_one(argv):
    from stl.cli import main

    root = logging.getLogger()
    for h in root.handlers[:]:
        root.removeHandler(h)
    so, se = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
        try:
            rc = main(argv)
        except SystemExit as e:
            if isinstance(e.code, str):
                print(e.code, file=sys.stderr)
                rc = 1
            else:
                rc = e.code if e.code is not None else 0
        except BaseException:  # what the real process would show
            traceback.print_exc()
            rc = 1
    return rc, so.getvalue(), se.getvalue()


if __name__ == "__main__":
    cases = json.load(open(sys.argv[1]))
    results = []
    for c in cases:
        if c.get("before"):
            exec(c["before"], {})
        saved = {k: os.environ.get(k) for k in c.get("env") or {}}
        os.environ.update(c.get("env") or {})  # this case only
        try:
            rc, out, err = run_one(c["argv"])
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        results.append({"id": c["id"], "rc": rc, "stdout": out, "stderr": err})
    json.dump(results, open(sys.argv[2], "w"))
