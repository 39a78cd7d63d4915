#!/usr/bin/env python3
"""Download the model files STL uses (run by ``make models``).

Into ``models/weights/`` (override with ``--dest`` or ``$STL_WEIGHTS``):

* ``bvlc_reference_caffenet.caffemodel``, ``bvlc_alexnet.caffemodel`` -- the paper's
  networks, from the official BVLC URLs, sha1-checked (233 MB each);
* ``ilsvrc_2012_mean.npy`` -- Caffe's ILSVRC-2012 mean image (BVLC/caffe, BSD-2);
* ``bing/ObjNessB2W8MAXBGR.{idx,wS1,wS2}.yml.gz`` -- trained BING objectness model
  (opencv/opencv_contrib, Apache-2.0) for ``cv2.saliency.ObjectnessBING``;
* ``edgeboxes/model.yml.gz`` -- Structured Edge Detection model for OpenCV EdgeBoxes
  (opencv/opencv_extra testdata).

and writes ``stl/resources/models/bvlc_reference_caffenet/deploy.prototxt`` and
``stl/resources/models/bvlc_alexnet/deploy.prototxt`` (BVLC/caffe network definitions) if missing.

Files already present with the right checksum are skipped; downloads go to a temporary
file renamed into place only after the check. Without internet every failed file is
reported with its URL and where to put a copy by hand, and the exit code is 1.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shutil
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

HERE = Path(__file__).resolve().parent

BVLC_DL = "http://dl.caffe.berkeleyvision.org"
GH_RAW = "https://raw.githubusercontent.com"
BING_BASE = f"{GH_RAW}/opencv/opencv_contrib/4.x/modules/saliency/samples/ObjectnessTrainedModel"


@dataclass
class Remote:
    key: str  # group name for --only
    rel: str  # path under the weights directory
    url: str
    sha1: Optional[str] = None  # None: validated by content (see `check`)
    check: Optional[Callable[[Path], Optional[str]]] = None  # returns an error message or None
    size_hint: str = ""


def _check_gz_yaml(path: Path) -> Optional[str]:
    try:
        with gzip.open(path, "rb") as f:
            head = f.read(16)
    except (OSError, EOFError) as e:
        return f"not a gzip file ({e})"
    if not head.startswith(b"%YAML"):
        return "not an OpenCV YAML model"
    return None


FILES: List[Remote] = [
    Remote("caffenet", "bvlc_reference_caffenet.caffemodel", f"{BVLC_DL}/bvlc_reference_caffenet.caffemodel",
           "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46", size_hint="233 MB"),
    Remote("alexnet", "bvlc_alexnet.caffemodel", f"{BVLC_DL}/bvlc_alexnet.caffemodel",
           "9116a64c0fbe4459d18f4bb6b56d647b63920377", size_hint="233 MB"),
    Remote("mean", "ilsvrc_2012_mean.npy",
           "https://github.com/BVLC/caffe/raw/master/python/caffe/imagenet/ilsvrc_2012_mean.npy",
           "8284f7ac12f5b0f6d5069c1fac00d8e0ba647b2f", size_hint="1.5 MB"),
    Remote("bing", "bing/ObjNessB2W8MAXBGR.idx.yml.gz", f"{BING_BASE}/ObjNessB2W8MAXBGR.idx.yml.gz",
           "609e873c06e49df2ddb21efc225f1734445b0e0b"),
    Remote("bing", "bing/ObjNessB2W8MAXBGR.wS1.yml.gz", f"{BING_BASE}/ObjNessB2W8MAXBGR.wS1.yml.gz",
           "331762a48468ee517edc206bc041495f1ecaf6e0"),
    Remote("bing", "bing/ObjNessB2W8MAXBGR.wS2.yml.gz", f"{BING_BASE}/ObjNessB2W8MAXBGR.wS2.yml.gz",
           "63d3613c1d70bc1ff8db8166041f62d720b551da"),
    Remote("edges", "edgeboxes/model.yml.gz", f"{GH_RAW}/opencv/opencv_extra/4.x/testdata/cv/ximgproc/model.yml.gz",
           None, _check_gz_yaml, size_hint="40 MB"),
]
GROUPS = sorted({f.key for f in FILES})


# ---------------------------------------------------------------------------
# BVLC deploy prototxts (BVLC/caffe models/bvlc_reference_caffenet, models/bvlc_alexnet; BSD-2)
# ---------------------------------------------------------------------------
def _layer(name, type_, bottom, top, params: str = "", learned: bool = False) -> str:
    lines = ["layer {", f'  name: "{name}"', f'  type: "{type_}"']
    if bottom:
        lines.append(f'  bottom: "{bottom}"')
    lines.append(f'  top: "{top}"')
    if learned:
        lines += ["  param {", "    lr_mult: 1", "    decay_mult: 1", "  }",
                  "  param {", "    lr_mult: 2", "    decay_mult: 0", "  }"]
    if params:
        lines += ["  " + l for l in params.strip("\n").split("\n")]
    lines.append("}")
    return "\n".join(lines)


def _conv(n, k, stride=1, pad=0, group=1):
    body = [f"  num_output: {n}"]
    if pad:
        body.append(f"  pad: {pad}")
    body.append(f"  kernel_size: {k}")
    if group != 1:
        body.append(f"  group: {group}")
    if stride != 1:
        body.append(f"  stride: {stride}")
    return "convolution_param {\n" + "\n".join(body) + "\n}"


_POOL = "pooling_param {\n  pool: MAX\n  kernel_size: 3\n  stride: 2\n}"
_LRN = "lrn_param {\n  local_size: 5\n  alpha: 0.0001\n  beta: 0.75\n}"
_DROP = "dropout_param {\n  dropout_ratio: 0.5\n}"


def deploy_prototxt(which: str) -> str:
    """The deploy definition of ``bvlc_reference_caffenet`` (pool before LRN) or ``bvlc_alexnet``
    (LRN before pool)."""
    alexnet = which == "bvlc_alexnet"
    learned = alexnet  # the AlexNet deploy file keeps the lr/decay multipliers
    L = []
    L.append('layer {\n  name: "data"\n  type: "Input"\n  top: "data"\n'
             '  input_param { shape: { dim: 10 dim: 3 dim: 227 dim: 227 } }\n}')
    prev = "data"
    for i, (n, k, s, p, g) in enumerate([(96, 11, 4, 0, 1), (256, 5, 1, 2, 2)], start=1):
        L.append(_layer(f"conv{i}", "Convolution", prev, f"conv{i}", _conv(n, k, s, p, g), learned))
        L.append(_layer(f"relu{i}", "ReLU", f"conv{i}", f"conv{i}"))
        if alexnet:
            L.append(_layer(f"norm{i}", "LRN", f"conv{i}", f"norm{i}", _LRN))
            L.append(_layer(f"pool{i}", "Pooling", f"norm{i}", f"pool{i}", _POOL))
            prev = f"pool{i}"
        else:
            L.append(_layer(f"pool{i}", "Pooling", f"conv{i}", f"pool{i}", _POOL))
            L.append(_layer(f"norm{i}", "LRN", f"pool{i}", f"norm{i}", _LRN))
            prev = f"norm{i}"
    for i, (n, g) in zip((3, 4, 5), [(384, 1), (384, 2), (256, 2)]):
        L.append(_layer(f"conv{i}", "Convolution", prev, f"conv{i}", _conv(n, 3, 1, 1, g), learned))
        L.append(_layer(f"relu{i}", "ReLU", f"conv{i}", f"conv{i}"))
        prev = f"conv{i}"
    L.append(_layer("pool5", "Pooling", "conv5", "pool5", _POOL))
    prev = "pool5"
    for i in (6, 7):
        L.append(_layer(f"fc{i}", "InnerProduct", prev, f"fc{i}", "inner_product_param {\n  num_output: 4096\n}",
                        learned))
        L.append(_layer(f"relu{i}", "ReLU", f"fc{i}", f"fc{i}"))
        L.append(_layer(f"drop{i}", "Dropout", f"fc{i}", f"fc{i}", _DROP))
        prev = f"fc{i}"
    L.append(_layer("fc8", "InnerProduct", "fc7", "fc8", "inner_product_param {\n  num_output: 1000\n}", learned))
    L.append(_layer("prob", "Softmax", "fc8", "prob"))
    name = "AlexNet" if alexnet else "CaffeNet"
    return f'name: "{name}"\n' + "\n".join(L) + "\n"


def write_prototxts(models_dir: Path = HERE.parent / "stl" / "resources" / "models", force: bool = False) -> List[Path]:
    written = []
    for which in ("bvlc_reference_caffenet", "bvlc_alexnet"):
        p = models_dir / which / "deploy.prototxt"
        if p.exists() and not force:
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(deploy_prototxt(which))
        written.append(p)
    return written


# ---------------------------------------------------------------------------
# Downloads
# ---------------------------------------------------------------------------
class FetchError(RuntimeError):
    pass


def sha1_of(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(remote: Remote, path: Path) -> Optional[str]:
    """None if ``path`` is a good copy of ``remote``, else the reason."""
    if remote.sha1 is not None:
        got = sha1_of(path)
        if got != remote.sha1:
            return f"sha1 {got} != expected {remote.sha1}"
    if remote.check is not None:
        return remote.check(path)
    return None


def _progress(total, desc):
    try:
        from tqdm import tqdm

        return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, leave=True)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None


def download(remote: Remote, dest: Path, timeout: float = 60.0) -> Path:
    """Fetch ``remote`` to ``dest`` atomically (temporary file + rename) and verify it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp)
    try:
        req = urllib.request.Request(remote.url, headers={"User-Agent": "stl-fetch-models/1.0"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            total = resp.headers.get("Content-Length")
            bar = _progress(int(total) if total else None, dest.name)
            try:
                while True:
                    chunk = resp.read(1 << 20)
                    if not chunk:
                        break
                    out.write(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
        bad = verify(remote, tmp)
        if bad:
            raise FetchError(f"downloaded {remote.url} but the file is wrong: {bad}")
        os.replace(tmp, dest)
        return dest
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise FetchError(f"cannot download {remote.url}: {reason}") from e
    finally:
        if tmp.exists():
            tmp.unlink()


def manual_hint(remote: Remote, dest: Path) -> str:
    check = f"sha1 {remote.sha1}" if remote.sha1 else "no published checksum"
    size = f", {remote.size_hint}" if remote.size_hint else ""
    return (f"  download it elsewhere from\n      {remote.url}\n"
            f"  and place it at\n      {dest}\n  ({check}{size}); then run `make models` again.")


def fetch(dest_dir: Path, only: Optional[List[str]] = None, timeout: float = 60.0, out=sys.stdout,
          write_deploy: bool = True) -> int:
    """Fetch the selected groups; returns the process exit code (0 ok, 1 some file missing)."""
    if write_deploy:
        for p in write_prototxts():
            print(f"wrote {p}", file=out)
    failures = []
    for remote in FILES:
        if only and remote.key not in only:
            continue
        dest = dest_dir / remote.rel
        if dest.exists():
            bad = verify(remote, dest)
            if bad is None:
                print(f"ok       {dest} (already present)", file=out)
                continue
            print(f"replace  {dest}: {bad}", file=out)
        print(f"fetch    {remote.url}", file=out)
        try:
            download(remote, dest, timeout)
            print(f"ok       {dest}", file=out)
        except FetchError as e:
            failures.append((remote, dest, str(e)))
            print(f"FAILED   {e}", file=out)
    if failures:
        print(f"\n{len(failures)} file(s) could not be downloaded (no internet?):", file=sys.stderr)
        for remote, dest, err in failures:
            print(f"- {dest.name}: {err}\n{manual_hint(remote, dest)}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", type=Path, default=Path(os.environ.get("STL_WEIGHTS") or HERE / "weights"),
                    help="weights directory (default models/weights or $STL_WEIGHTS)")
    ap.add_argument("--only", default="", help=f"comma-separated subset of {','.join(GROUPS)}")
    ap.add_argument("--timeout", type=float, default=60.0, help="network timeout per request, seconds")
    ap.add_argument("--prototxt-only", action="store_true", help="only write the deploy prototxts")
    args = ap.parse_args(argv)
    only = [s for s in args.only.split(",") if s]
    unknown = [s for s in only if s not in GROUPS]
    if unknown:
        ap.error(f"unknown group(s) {unknown}; choose from {GROUPS}")
    if args.prototxt_only:
        for p in write_prototxts():
            print(f"wrote {p}")
        return 0
    return fetch(args.dest, only or None, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
