#!/usr/bin/env python
"""``make data``: download PASCAL VOC 2007 (test + trainval) into data/VOCdevkit, the
published proposals of Hosang et al. on VOC 2007 test (EdgeBoxes, MCG) into data/hosang,
and explain how to get ILSVRC-2012 (which needs a registration).

    python data/fetch_data.py [--splits test trainval] [--dest data] [--cache .cache/downloads]
                              [--hosang EDGEBOXES,MCG | --hosang none]

The proposal archives, their URLs and checksums are listed once, in
``stl.proposals.precomputed.HOSANG_VOC07``.

Each tar is downloaded from the official server (mirror as fallback) with a
progress bar into ``<cache>/<name>.part`` (resumed when possible), checked
against its MD5, renamed, then extracted into a temporary folder and moved
into ``<dest>/VOCdevkit``; a stamp file marks a finished split, so a rerun
skips it and an interrupted one starts that split's extraction over. A tar
already in the cache (e.g. copied by hand on an offline machine) is used as
is after the MD5 check.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

VOC2007 = {
    "test": {
        "file": "VOCtest_06-Nov-2007.tar",
        "md5": "b6e924de25625d8de591ea690078ad9f",
        "urls": ["http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar",
                 "https://pjreddie.com/media/files/VOCtest_06-Nov-2007.tar"],
    },
    "trainval": {
        "file": "VOCtrainval_06-Nov-2007.tar",
        "md5": "c52e279531787c972589f7e41ab4ae64",
        "urls": ["http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar",
                 "https://pjreddie.com/media/files/VOCtrainval_06-Nov-2007.tar"],
    },
}

ILSVRC_HELP = """\
ILSVRC-2012 (ImageNet) cannot be downloaded automatically: its images are
available only after registering at https://image-net.org (agree to the terms,
then "Download" -> ILSVRC 2012). For the localisation experiments you need:

  ILSVRC2012_img_val.tar        (6.3 GB, 50,000 validation images)
  ILSVRC2012_bbox_val_v3.tgz    (bounding boxes of the validation images, XML)

Extract both into one folder, e.g. /data/ilsvrc2012:
  mkdir -p /data/ilsvrc2012/val && tar -xf ILSVRC2012_img_val.tar -C /data/ilsvrc2012/val
  tar -xzf ILSVRC2012_bbox_val_v3.tgz -C /data/ilsvrc2012      # -> ILSVRC2012_bbox_val_v3/val/*.xml
and point the project at it with ONE of:
  ln -s /data/ilsvrc2012 data/ilsvrc          (the default place)
  export STL_ILSVRC=/data/ilsvrc2012
  stl run --root /data/ilsvrc2012 ...  /  make fig3 ILSVRC=/data/ilsvrc2012

The WSOL-benchmark metadata layout (clovaai/wsolevaluation, metadata/ILSVRC/test:
image_ids.txt, class_labels.txt, localization.txt, image_sizes.txt next to val/)
works as well. See data/README.md.
"""


class FetchError(RuntimeError):
    pass


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def download(urls, target: Path, md5, timeout: float = 30.0, progress: bool = True, offline_hint=None) -> Path:
    """Download to ``target`` (atomically: ``.part`` then rename), trying each URL; check the MD5
    (``md5=None``: not pinned -- the MD5 of what arrived is printed, to be pinned). ``offline_hint``
    replaces the VOC advice at the end of the no-network message."""
    from tqdm import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        if md5 is None or md5sum(target) == md5:
            return target
        print(f"{target}: MD5 mismatch, downloading again", file=sys.stderr)
        target.unlink()
    part = target.with_name(target.name + ".part")
    errors = []
    for url in urls:
        try:
            have = part.stat().st_size if part.exists() else 0
            req = urllib.request.Request(url, headers={"User-Agent": "stl-fetch-data/1"})
            if have and url.startswith("http"):
                req.add_header("Range", f"bytes={have}-")
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                resumed = have and getattr(resp, "status", 200) == 206
                total = resp.headers.get("Content-Length")
                total = int(total) + (have if resumed else 0) if total else None
                mode = "ab" if resumed else "wb"
                with open(part, mode) as out, tqdm(total=total, initial=have if resumed else 0, unit="B",
                                                   unit_scale=True, unit_divisor=1024, desc=target.name,
                                                   disable=not progress) as bar:
                    while True:
                        block = resp.read(1 << 20)
                        if not block:
                            break
                        out.write(block)
                        bar.update(len(block))
            got = md5sum(part)
            if md5 is None:
                print(f"{target.name}: MD5 {got} (not pinned in the catalogue: NOT verified)", file=sys.stderr)
            elif got != md5:
                part.unlink()
                raise FetchError(f"MD5 mismatch for {url}: got {got}, expected {md5}")
            os.replace(part, target)
            return target
        except (urllib.error.URLError, socket.timeout, ConnectionError, OSError, FetchError) as e:
            errors.append(f"{url}: {getattr(e, 'reason', e)}")
    raise FetchError(
        f"cannot download {target.name} -- no network, or the servers are down?\n  "
        + "\n  ".join(errors)
        + (f"\n{offline_hint}" if offline_hint else
           f"\nOn an offline machine: fetch {urls[0]} elsewhere (MD5 {md5}), copy it to {target} and rerun "
           f"`make data`; or point STL_VOC at an existing VOCdevkit (see data/README.md)."))


def _safe_extract(tar: tarfile.TarFile, dest: Path):
    dest = dest.resolve()
    for m in tar.getmembers():
        p = (dest / m.name).resolve()
        if not str(p).startswith(str(dest) + os.sep) and p != dest:
            raise FetchError(f"refusing to extract {m.name!r} outside {dest}")
        if m.issym() or m.islnk():
            raise FetchError(f"refusing to extract link {m.name!r}")
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
    else:  # pragma: no cover - Python < 3.11.4
        tar.extractall(dest)


def extract_into(tar_path: Path, dest: Path, stamp: Path):
    """Extract a VOC tar (which holds VOCdevkit/...) into ``dest`` (the folder containing VOCdevkit)."""
    tmp = dest / f".extract-{tar_path.stem}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    with tarfile.open(tar_path) as tar:
        _safe_extract(tar, tmp)
    src_root = tmp / "VOCdevkit"
    if not src_root.is_dir():
        raise FetchError(f"{tar_path} does not contain VOCdevkit/")
    for src in sorted(src_root.rglob("*")):
        if src.is_file():
            dst = dest / "VOCdevkit" / src.relative_to(src_root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    shutil.rmtree(tmp)
    stamp.write_text(f"{tar_path.name}\n")


def fetch_voc(splits, dest: Path, cache: Path, progress: bool = True, table=VOC2007) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    root = dest / "VOCdevkit"
    for split in splits:
        info = table[split]
        stamp = root / f".stl-voc2007-{split}.done"
        if stamp.exists():
            print(f"VOC 2007 {split}: already in {root}")
            continue
        tar = download(info["urls"], cache / info["file"], info["md5"], progress=progress)
        print(f"VOC 2007 {split}: extracting {tar.name} into {root}")
        root.mkdir(parents=True, exist_ok=True)
        extract_into(tar, dest, stamp)
    return root


def fetch_hosang(methods, dest: Path, cache: Path, progress: bool = True, table=None) -> Path:
    """Hosang et al.'s published proposals of ``methods`` (keys of ``HOSANG_VOC07``) into ``dest``
    (each archive extracted there, so ``dest/<dir>/mat/<id[:4]>/<id>.mat``); a stamp per method."""
    if table is None:
        sys.path.insert(0, str(REPO))
        from stl.proposals.precomputed import HOSANG_VOC07 as table
    dest.mkdir(parents=True, exist_ok=True)
    for m in methods:
        if m not in table:
            raise FetchError(f"no published proposals for {m!r}; known: {', '.join(table)}")
        info = table[m]
        stamp = dest / f".stl-hosang-{info['dir']}.done"
        if stamp.exists():
            print(f"{m} proposals: already in {dest / info['dir']}")
            continue
        hint = (f"Hosang et al.'s {info['name']} proposals: the archives are listed on {_hosang_page()}; on an "
                f"offline machine save {info['archive']} as {cache / info['archive']} and rerun `make data`, or "
                f"extract it into {dest} yourself (see data/README.md).")
        tar = download([info["url"]], cache / info["archive"], info["md5"], progress=progress, offline_hint=hint)
        tmp = dest / f".extract-{info['dir']}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        with tarfile.open(tar) as t:
            _safe_extract(t, tmp)
        for src in sorted(tmp.rglob("*")):
            if src.is_file():
                dst = dest / src.relative_to(tmp)
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
        shutil.rmtree(tmp)
        stamp.write_text(f"{tar.name}\n")
        print(f"{m} proposals: extracted {tar.name} into {dest}")
    return dest


def _hosang_page() -> str:
    sys.path.insert(0, str(REPO))
    from stl.proposals.precomputed import HOSANG_PAGE

    return HOSANG_PAGE


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--splits", nargs="+", default=["test", "trainval"], choices=sorted(VOC2007))
    p.add_argument("--dest", default=str(REPO / "data"), help="folder that gets VOCdevkit/ (default data/)")
    p.add_argument("--cache", default=str(REPO / ".cache" / "downloads"), help="where the tars are kept")
    p.add_argument("--hosang", default="EDGEBOXES,MCG",
                   help="published VOC 2007 test proposals of Hosang et al. to fetch (comma-separated keys of "
                        "stl.proposals.precomputed.HOSANG_VOC07: EDGEBOXES, MCG, SELSEARCH, BING; 'none' skips)")
    p.add_argument("--hosang-dest", default=None, help="where they go (default $STL_HOSANG_DIR or data/hosang)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    rc = 0
    try:
        root = fetch_voc(args.splits, Path(args.dest), Path(args.cache), progress=not args.no_progress)
        print(f"\nPASCAL VOC 2007 ({', '.join(args.splits)}) is in {root}; `stl run --dataset voc2007_test` finds "
              f"it there (or set STL_VOC).\n")
    except FetchError as e:
        print(f"\nERROR: {e}\n", file=sys.stderr)
        rc = 2
    methods = [m.strip().upper() for m in args.hosang.split(",") if m.strip() and m.strip().lower() != "none"]
    if methods:
        sys.path.insert(0, str(REPO))
        from stl.paths import hosang_root

        dest = Path(args.hosang_dest) if args.hosang_dest else hosang_root()
        try:
            fetch_hosang(methods, dest, Path(args.cache), progress=not args.no_progress)
            print(f"\nHosang et al.'s proposals ({', '.join(methods)}) are in {dest}; the methods "
                  f"{', '.join(m + '-PUBLISHED' for m in methods)} read them (`stl fig3 --voc ...`).\n")
        except FetchError as e:
            print(f"\nERROR: {e}\n", file=sys.stderr)
            rc = 2
    print(ILSVRC_HELP)
    return rc


if __name__ == "__main__":
    sys.exit(main())
