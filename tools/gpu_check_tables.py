"""Tables of tools/gpu_check.sh (docs/gpu.md). Not part of the ``stl`` command: the script calls

    python tools/gpu_check_tables.py segmentation N SIZE OUT.json [KEY=VALUE ...]
        CPU seconds per image of STL's initial segmentations (the authors profile's, with the bench's
        ``--set`` overrides) on the first N real images of ../shared (the images ``stl bench`` uses),
        at the network input SIZE.
    python tools/gpu_check_tables.py bench BENCH.csv SEG_DIR OUT.md
        the ``stl bench`` rows with the CPU side split: segmentation (SEG_DIR/segmentation_SIZE.json)
        and clustering + the rest (``stl bench``'s seconds outside the classifier minus segmentation).
    python tools/gpu_check_tables.py summary OUT
        OUT/README.md from what the steps left in OUT (env.json, steps.tsv, cuda-tests.xml, bench.json,
        runs.json): the environment, each step, the tables and the issue's goals.
    python tools/gpu_check_tables.py runs RUN_A.h5 SECONDS_A RUN_B.h5 SECONDS_B OUT.md
        two stored runs of the same images (CUDA via Ray workers vs CPU): images/s, and per image
        whether the window lists are identical, identical up to swaps of near-tied drops
        (stl.core.localization.neighbour_swaps, |drop difference| < 1e-5), or different.

Each writes OUT.md and OUT.json (the same numbers) and prints the Markdown.
"""
from __future__ import annotations

import csv
import json
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

SWAP_TOLERANCE = 1e-5


def _write(out_md: Path, text: str, data) -> None:
    out_md = Path(out_md)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    from stl.io import write_json_atomic

    write_json_atomic(out_md.with_suffix(".json"), data)
    tmp = out_md.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(out_md)
    print(text)


def segmentation(n: str, size: str, out_json: str, *overrides: str) -> None:
    from stl.cli.args import apply_overrides, parse_overrides
    from stl.core.config import STLConfig
    from stl.core.localization import resize_to_input
    from stl.core.segmentation import initial_segmentations
    from stl.experiments.bench import benchmark_images
    from stl.io import as_rgb_uint8
    from stl.paths import shared_dir

    shared = shared_dir()
    ids, images, data = benchmark_images(int(n), shared if shared.is_dir() else None)
    config = apply_overrides(STLConfig.for_profile("authors"), parse_overrides(overrides))  # the bench's --set
    hw = (int(size), int(size))
    seconds = []
    for im in images:
        x = resize_to_input(as_rgb_uint8(im), hw, config.input_resize)
        t0 = time.perf_counter()
        segs = initial_segmentations(x, config.segmentation, config.box_convention)
        seconds.append(time.perf_counter() - t0)
    res = {"images": len(images), "data": data, "input_size": hw, "segmentations_per_image": len(segs),
           "overrides": list(overrides),
           "seconds_per_image_mean": statistics.fmean(seconds), "seconds_per_image_median": statistics.median(seconds)}
    Path(out_json).parent.mkdir(parents=True, exist_ok=True)
    Path(out_json).write_text(json.dumps(res, indent=1))
    print(f"segmentation at {hw[0]}x{hw[1]}: {res['seconds_per_image_mean']:.3f} s/image "
          f"({res['segmentations_per_image']} segmentations, {len(images)} images)")


#: network input side of each benchmarked model (for its segmentation time)
INPUT_SIDE = {"efficientnet_lite0": 224}


def _f(row, key, default=float("nan")) -> float:
    try:
        return float(row.get(key, ""))
    except ValueError:
        return default


def bench(bench_csv: str, seg_dir: str, out_md: str) -> None:
    rows = list(csv.DictReader(open(bench_csv, newline=""))) if Path(bench_csv).exists() else []
    out = []
    for r in rows:
        side = INPUT_SIDE.get(r["model"], 227)
        seg_file = Path(seg_dir) / f"segmentation_{side}.json"
        seg = json.loads(seg_file.read_text())["seconds_per_image_mean"] if seg_file.exists() else float("nan")
        ips = _f(r, "images_per_second")
        outside = _f(r, "seconds_outside_classifier_per_image")
        out.append({
            "model": r["model"], "device": r["device"], "precision": r["precision"], "images": int(r["images"]),
            "images_per_chunk": int(r["images_per_chunk"]), "batch_size": int(r["batch_size"]),
            "images_per_second": ips, "seconds_per_image": 1.0 / ips if ips else float("nan"),
            "classifier_seconds_per_image": (1.0 / ips - outside) if ips else float("nan"),
            "cpu_seconds_per_image": outside, "segmentation_seconds_per_image": seg,
            "clustering_and_rest_seconds_per_image": outside - seg,
            "forwards_per_image": _f(r, "forwards_per_image"), "achieved_throughput": _f(r, "achieved_throughput"),
            "peak_throughput": _f(r, "peak_throughput"), "reference_top10_matched": _f(r, "reference_top10_matched"),
            "reference_identical": r.get("reference_identical", ""), "machine": r.get("machine", ""),
        })
    lines = ["| model | precision | device | images (chunk) | images/s | s/image | classifier s/image | "
             "CPU side s/image | of which segmentation | clustering + rest | forwards/image | "
             "achieved / peak forwards/s | top-10 vs reference (fp32, batch 1) |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for o in out:
        ident = f"; identical: {o['reference_identical']}" if o["reference_identical"] not in ("", "None") else ""
        lines.append(
            f"| {o['model']} | {o['precision']} | {o['device']} | {o['images']} ({o['images_per_chunk']}) | "
            f"{o['images_per_second']:.2f} | {o['seconds_per_image']:.3f} | {o['classifier_seconds_per_image']:.3f} | "
            f"{o['cpu_seconds_per_image']:.3f} | {o['segmentation_seconds_per_image']:.3f} | "
            f"{o['clustering_and_rest_seconds_per_image']:.3f} | {o['forwards_per_image']:.0f} | "
            f"{o['achieved_throughput']:.0f} / {o['peak_throughput']:.0f} | "
            f"{'-' if o['reference_top10_matched'] != o['reference_top10_matched'] else format(o['reference_top10_matched'], '.0%')}"
            f"{ident} |")
    text = ("`stl bench` (STL-WL, authors profile) per model and precision; the CPU side (everything outside "
            "the classifier's forward calls, one process) split into the initial segmentations (timed apart on "
            "the same images) and clustering + the rest.\n\n" + "\n".join(lines) + "\n")
    if not out:
        text += "\n(no `stl bench` rows: the bench steps were skipped)\n"
    _write(Path(out_md), text, out)


def runs(run_a: str, seconds_a: str, run_b: str, seconds_b: str, out_md: str) -> None:
    import numpy as np

    from stl.core.localization import neighbour_swaps
    from stl.runner import load_run

    a, b = load_run(run_a), load_run(run_b)
    common = [i for i in a.image_ids if i in b.boxes]
    identical, swapped, differ, swaps = [], [], [], []
    for i in common:
        wa = SimpleNamespace(input_boxes=np.asarray(a.boxes[i], np.float64), scores=np.asarray(a.scores[i], np.float64))
        wb = SimpleNamespace(input_boxes=np.asarray(b.boxes[i], np.float64), scores=np.asarray(b.scores[i], np.float64))
        n = neighbour_swaps(wa, wb, SWAP_TOLERANCE)
        if n is None:
            differ.append(i)
        elif n == 0:
            identical.append(i)
        else:
            swapped.append(i)
            swaps.append(n)
    sa, sb = float(seconds_a), float(seconds_b)
    res = {"run_a": str(run_a), "run_b": str(run_b), "method": a.meta.get("method"), "model": a.meta.get("model"),
           "images_a": len(a.image_ids), "images_b": len(b.image_ids), "failures_a": len(a.failures),
           "failures_b": len(b.failures), "common": len(common), "seconds_a": sa, "seconds_b": sb,
           "images_per_second_a": len(a.image_ids) / sa if sa > 0 else float("nan"),
           "images_per_second_b": len(b.image_ids) / sb if sb > 0 else float("nan"),
           "identical": len(identical), "near_tied_swaps_only": len(swapped), "swaps": swaps,
           "different": len(differ), "different_images": differ[:20], "swap_tolerance": SWAP_TOLERANCE}
    text = (f"Stored windows of two runs of {res['method']} ({res['model']}) on the same images: A = {run_a}, "
            f"B = {run_b}.\n\n"
            "| run | images | failed | wall s (incl. start-up) | images/s |\n|---|---:|---:|---:|---:|\n"
            f"| A | {res['images_a']} | {res['failures_a']} | {sa:.1f} | {res['images_per_second_a']:.2f} |\n"
            f"| B | {res['images_b']} | {res['failures_b']} | {sb:.1f} | {res['images_per_second_b']:.2f} |\n\n"
            f"Window lists on the {len(common)} common images: {len(identical)} identical, {len(swapped)} identical "
            f"up to swaps of near-tied drops (|difference| < {SWAP_TOLERANCE:g}; swaps per image {swaps}), "
            f"{len(differ)} different" + (f" (e.g. {', '.join(differ[:5])})" if differ else "") + ".\n")
    _write(Path(out_md), text, res)


def _tests(xml_path: Path) -> dict:
    """{test name: "passed" | "failed" | "skipped"} from pytest's JUnit XML."""
    import xml.etree.ElementTree as ET

    if not xml_path.exists():
        return {}
    out = {}
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        kids = {c.tag for c in case}
        out[case.get("name")] = ("failed" if kids & {"failure", "error"} else "skipped" if "skipped" in kids
                                 else "passed")
    return out


def _goal(ok, text: str) -> str:
    return f"| {text} | {'met' if ok is True else 'NOT met' if ok is False else 'not measured'} |"


def summary(out_dir: str) -> None:
    """OUT/README.md: the environment, each step (ran / skipped / failed), the tables, the issue's goals."""
    out = Path(out_dir)
    env = json.loads((out / "env.json").read_text()) if (out / "env.json").exists() else {}
    steps = [ln.split("\t") for ln in (out / "steps.tsv").read_text().splitlines()] if (out / "steps.tsv").exists() else []
    bench_rows = json.loads((out / "bench.json").read_text()) if (out / "bench.json").exists() else []
    run = json.loads((out / "runs.json").read_text()) if (out / "runs.json").exists() else None
    tests = _tests(out / "cuda-tests.xml")
    gpu = bool(env.get("gpu_mode")) and bool(env.get("cuda_available"))
    mode = (f"GPU mode: {env.get('gpu')} ({env.get('gpu_memory_gib')} GiB), torch {env.get('torch')} with CUDA "
            f"{env.get('torch_cuda')}, cuDNN {env.get('cudnn')}" if gpu else
            f"CPU mode (no usable GPU: torch {env.get('torch')}, CUDA build {env.get('torch_cuda')}): the CUDA parts "
            "were skipped; the bench and the runs ran as a 1-image plumbing check on the CPU, not a measurement")
    lines = ["# GPU check (tools/gpu_check.sh, docs/gpu.md)", "", mode + ".", "",
             f"Host {env.get('host')}, {env.get('cpu_cores')} CPU cores, commit {env.get('git_commit', '')[:12]}.", "",
             "| step | status | note |", "|---|---|---|"]
    lines += [f"| {s[0]} | {s[1]} | {s[2] if len(s) > 2 else ''} |" for s in steps]
    by = {(r["model"], r["precision"]): r for r in bench_rows if r["device"].startswith("cuda")}

    def ips(model, precision="fp32"):
        r = by.get((model, precision))
        return None if r is None else r["images_per_second"]

    stl_tests = {k: v for k, v in tests.items() if k.startswith("test_stl_windows_cpu_vs_cuda_fp32")}
    parity = None
    if gpu and stl_tests:
        parity = all(v == "passed" for v in stl_tests.values())
    if gpu and run is not None and parity is not False:
        parity = run["different"] == 0 and run["common"] > 0
    cn, lite = ips("caffenet_random"), ips("efficientnet_lite0")
    ray_ips = run["images_per_second_a"] if (gpu and run) else None
    lines += ["", "## Goals (issue 23)", "", "| goal | status |", "|---|---|",
              _goal(parity, "fp32 windows on CUDA identical to the CPU's up to swaps of drops closer than 1e-5 "
                            f"(tests: {', '.join(f'{k}: {v}' for k, v in stl_tests.items()) or 'none'}"
                            + (f"; Ray run: {run['identical']} identical, {run['near_tied_swaps_only']} swaps only, "
                               f"{run['different']} different of {run['common']}" if run and gpu else "") + ")"),
              _goal(None if cn is None and ray_ips is None else max(cn or 0, ray_ips or 0) >= 20,
                    f"CaffeNet STL-WL fp32 >= 20 images/s on one GPU (bench, one process: "
                    f"{'-' if cn is None else f'{cn:.2f}'}; Ray GPU workers: "
                    f"{'-' if ray_ips is None else f'{ray_ips:.2f}'})"),
              _goal(None if lite is None else lite >= 10,
                    f"EfficientNet-Lite0 STL-WL fp32 >= 10 images/s (bench: {'-' if lite is None else f'{lite:.2f}'})")]
    for name, title in (("bench.md", "stl bench"), ("runs.md", "stl run: Ray workers vs the CPU")):
        if (out / name).exists():
            lines += ["", f"## {title}", "", (out / name).read_text().rstrip()]
    text = "\n".join(lines) + "\n"
    (out / "README.md.tmp").write_text(text)
    (out / "README.md.tmp").replace(out / "README.md")
    print(text)


def main(argv) -> int:
    commands = {"segmentation": (segmentation, 3), "bench": (bench, 3), "runs": (runs, 5), "summary": (summary, 1)}
    if not argv or argv[0] not in commands or len(argv) - 1 < commands[argv[0]][1] or \
            (argv[0] != "segmentation" and len(argv) - 1 != commands[argv[0]][1]):
        print(__doc__, file=sys.stderr)
        return 2
    fn, _ = commands[argv[0]]
    fn(*argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
