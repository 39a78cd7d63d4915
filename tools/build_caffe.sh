#!/usr/bin/env bash
# Build BVLC Caffe (CPU only) with pycaffe and install it into a Python environment.
#
#   bash tools/build_caffe.sh [PYTHON]        (`make caffe` passes .venv/bin/python)
#
# Source: the PyPI sdist brocolli-caffe==9.0.2 (BVLC/caffe commit 9b89154 plus a few
# extra layer types), sha256-pinned. Its setup.py insists on conda and Python <= 3.9,
# so this script drives CMake directly against Debian's libraries and the given
# interpreter, with two small source patches (see patch_sources below). Everything is
# linked into one python/caffe/_caffe.so, packaged as a wheel cached under
# .cache/caffe/wheel/ and installed with `pip install --no-deps`.
#
# Idempotent: exits at once when `PYTHON -c "import caffe"` already works, and
# reinstalls the cached wheel (seconds) when only the environment is new.
# Environment: STL_CAFFE_JOBS (default 2) parallel compile jobs,
#              STL_CAFFE_FORCE=1 rebuild even if caffe is importable.
set -euo pipefail

PY=${1:-.venv/bin/python}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="$ROOT/.cache/caffe"
PKG=brocolli-caffe
VERSION=9.0.2
SDIST_SHA256=c6410cc60bdd6db685d441b66be7df05410f8850ac88d6b75d48ef9b2315c08a
SDIST="$CACHE/$PKG-$VERSION.tar.gz"
BUILD="$CACHE/build"
WHEELDIR="$CACHE/wheel"
JOBS=${STL_CAFFE_JOBS:-2}
APT_DEPS=(libboost-system-dev libboost-thread-dev libboost-filesystem-dev libboost-regex-dev
          libboost-python-dev libprotobuf-dev protobuf-compiler libgoogle-glog-dev libgflags-dev
          libopenblas-dev libhdf5-dev cmake)
export GLOG_minloglevel=2  # keep Caffe's glog quiet during the checks below

say() { echo "[caffe] $*"; }
die() { echo "[caffe] ERROR: $*" >&2; exit 1; }
T0=$(date +%s)

[[ -x "$PY" ]] || command -v "$PY" >/dev/null 2>&1 || die "python interpreter '$PY' not found (run \`make setup\` first)"
PY=$(command -v "$PY" 2>/dev/null || echo "$PY")
[[ "$PY" == /* ]] || PY="$ROOT/$PY"

# ---- 0. already there? ------------------------------------------------------------------
if [[ "${STL_CAFFE_FORCE:-0}" != 1 ]] && where=$(cd /tmp && "$PY" -c "import caffe; print(caffe.__file__)" 2>/dev/null); then
    say "pycaffe already importable: $where (STL_CAFFE_FORCE=1 to rebuild)"
    exit 0
fi

PYTAG=$("$PY" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
PYVER=$("$PY" -c 'import sys; print("%d%d" % sys.version_info[:2])')
PLAT=$("$PY" -c 'import sysconfig; print(sysconfig.get_platform().replace("-", "_").replace(".", "_"))')
WHEEL_NAME="brocolli_caffe-$VERSION+stl.cpu-$PYTAG-$PYTAG-$PLAT.whl"
WHEEL="$WHEELDIR/$WHEEL_NAME"

verify() {
    say "verifying: import caffe and a forward pass of a small net"
    (cd /tmp && "$PY" - <<'EOF'
import os, tempfile
import numpy as np
import caffe
from caffe.proto import caffe_pb2
from google.protobuf import text_format
net_txt = """
name: "stl_selftest"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc"
        inner_product_param { num_output: 5 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""
text_format.Merge(net_txt, caffe_pb2.NetParameter())  # python protobuf reads caffe_pb2
with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as f:
    f.write(net_txt)
try:
    caffe.set_mode_cpu()
    net = caffe.Net(f.name, caffe.TEST)
    net.blobs["data"].data[...] = np.random.RandomState(0).randn(2, 3, 8, 8)
    p = net.forward()["prob"]
    assert p.shape == (2, 5) and np.allclose(p.sum(1), 1, atol=1e-5), p
finally:
    os.unlink(f.name)
print("[caffe] OK: pycaffe", caffe.__version__, "at", os.path.dirname(caffe.__file__))
EOF
    ) || die "pycaffe was installed but does not work (see the error above)"
}

install_wheel() {
    say "installing $WHEEL_NAME into $("$PY" -c 'import sys; print(sys.prefix)')"
    "$PY" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$WHEEL" \
        || die "pip could not install $WHEEL"
}

# ---- 1. cached wheel -------------------------------------------------------------------
if [[ -f "$WHEEL" && "${STL_CAFFE_FORCE:-0}" != 1 ]]; then
    say "using the cached wheel $WHEEL"
    install_wheel
    verify
    say "done in $(( $(date +%s) - T0 )) s"
    exit 0
fi

# ---- 2. system build dependencies ------------------------------------------------------
missing=()
for p in "${APT_DEPS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if (( ${#missing[@]} )); then
    say "installing build dependencies with apt-get: ${missing[*]}"
    SUDO=""
    [[ $(id -u) == 0 ]] || SUDO="sudo"
    command -v apt-get >/dev/null || die "apt-get not found; install the equivalents of: ${missing[*]}"
    $SUDO apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" \
        || die "apt-get install failed for: ${missing[*]}"
else
    say "build dependencies present (${#APT_DEPS[@]} Debian packages)"
fi
command -v g++ >/dev/null || die "g++ not found (apt-get install g++)"
BOOST_PY_LIB=boost_python$PYVER
ls /usr/lib/*/lib"$BOOST_PY_LIB".so >/dev/null 2>&1 \
    || die "lib$BOOST_PY_LIB.so not found: Debian's libboost-python-dev has no build for Python ${PYVER:0:1}.${PYVER:1}"

# ---- 3. source -------------------------------------------------------------------------
mkdir -p "$CACHE"
sha_ok() { [[ -f "$SDIST" ]] && echo "$SDIST_SHA256  $SDIST" | sha256sum -c --status; }
if ! sha_ok; then
    say "downloading $PKG==$VERSION (sdist) from PyPI"
    rm -f "$SDIST"
    "$PY" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
        "$PKG==$VERSION" -d "$CACHE/" || die "pip download of $PKG==$VERSION failed"
    sha_ok || die "sha256 mismatch for $SDIST (expected $SDIST_SHA256, got $(sha256sum "$SDIST" | cut -d' ' -f1))"
fi
say "sdist sha256 OK ($SDIST_SHA256)"

SRC="$BUILD/$PKG-$VERSION"
patch_sources() {
    # (a) python/CMakeLists.txt links a hard-coded -lboost_python; Debian names it
    #     libboost_python<MAJ><MIN>.so. Caffe also needs gflags at link time.
    sed -i "s/ -lboost_python / -l$BOOST_PY_LIB -lgflags /" "$SRC/python/CMakeLists.txt"
    grep -q -- "-l$BOOST_PY_LIB -lgflags" "$SRC/python/CMakeLists.txt" || die "patch (a) failed"
    # (b) net.cpp includes a gtest header it never uses.
    sed -i '/#include "caffe\/test\/test_caffe_main.hpp"/d' "$SRC/src/caffe/net.cpp"
    ! grep -q test_caffe_main "$SRC/src/caffe/net.cpp" || die "patch (b) failed"
    # (c) the top CMakeLists.txt looks for Python/numpy headers under ANACONDA_HOME;
    #     point it at the real interpreter (passed as -DSTL_PY_INCLUDE/-DSTL_NUMPY_INCLUDE).
    sed -i 's|^include_directories(${ANACONDA_HOME}/include .*|include_directories(${STL_PY_INCLUDE} ${STL_NUMPY_INCLUDE})|; s|^link_directories(${ANACONDA_HOME}/lib)|# (stl) no ANACONDA_HOME/lib|' "$SRC/CMakeLists.txt"
    grep -q 'include_directories(${STL_PY_INCLUDE} ${STL_NUMPY_INCLUDE})' "$SRC/CMakeLists.txt" || die "patch (c) failed"
}
if [[ ! -f "$SRC/.stl-patched" ]]; then
    say "extracting into $BUILD"
    rm -rf "$BUILD"
    mkdir -p "$BUILD"
    tar xzf "$SDIST" -C "$BUILD" || die "cannot extract $SDIST"
    [[ -d "$SRC" ]] || die "unexpected sdist layout (no $SRC)"
    say "patching sources (boost_python -> $BOOST_PY_LIB + gflags; drop gtest include; python include dirs)"
    patch_sources
    touch "$SRC/.stl-patched"
fi

# ---- 4. configure + build --------------------------------------------------------------
PY_INCLUDE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
NP_INCLUDE=$("$PY" -c 'import numpy; print(numpy.get_include())') || die "numpy is not installed in $PY"
[[ -f "$PY_INCLUDE/Python.h" ]] || die "Python.h not found in $PY_INCLUDE (install the Python development headers)"
HDF5_INC=/usr/include/hdf5/serial
HDF5_LIB=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/hdf5/serial
say "configuring (CPU_ONLY, python $PYTAG, numpy headers $NP_INCLUDE)"
cmake -S "$SRC" -B "$SRC/_build" -DCMAKE_BUILD_TYPE=Release \
    -DCPU_ONLY=ON -DBUILD_python=ON -Dpython_version=3 \
    -DUSE_OPENCV=OFF -DUSE_LMDB=OFF -DUSE_LEVELDB=OFF \
    -DSTL_PY_INCLUDE="$PY_INCLUDE" -DSTL_NUMPY_INCLUDE="$NP_INCLUDE" \
    -DCMAKE_CXX_FLAGS="-I$HDF5_INC -Wno-deprecated-declarations" \
    -DCMAKE_SHARED_LINKER_FLAGS="-L$HDF5_LIB" \
    > "$SRC/_build.configure.log" 2>&1 \
    || { tail -40 "$SRC/_build.configure.log"; die "cmake configure failed (log: $SRC/_build.configure.log)"; }
say "compiling with -j$JOBS (about 3 minutes on 2 cores, ~1.2 GB RAM; log: $SRC/_build.log)"
TB=$(date +%s)
if ! cmake --build "$SRC/_build" --target pycaffe -j "$JOBS" > "$SRC/_build.log" 2>&1; then
    grep -E "error|Error" "$SRC/_build.log" | head -30
    die "compilation failed (full log: $SRC/_build.log)"
fi
say "compiled in $(( $(date +%s) - TB )) s"
SO=$(find "$SRC/_build" -name "_caffe*.so" -type f | head -1)
[[ -n "$SO" ]] || die "_caffe.so not produced"
PB2=$(find "$SRC/_build" -name caffe_pb2.py | head -1)
[[ -n "$PB2" ]] || die "caffe_pb2.py not generated"

# ---- 5. package as a wheel -------------------------------------------------------------
say "packaging $WHEEL_NAME"
STAGE="$BUILD/stage"
rm -rf "$STAGE"
mkdir -p "$STAGE"
cp -r "$SRC/python/caffe" "$STAGE/caffe"
rm -rf "$STAGE/caffe/test" "$STAGE/caffe/_caffe.cpp" "$STAGE/caffe/_caffe.so"
find "$STAGE" -name __pycache__ -prune -exec rm -rf {} +
cp "$SO" "$STAGE/caffe/_caffe.so"
strip --strip-unneeded "$STAGE/caffe/_caffe.so" 2>/dev/null || true
mkdir -p "$STAGE/caffe/proto"
cp "$PB2" "$STAGE/caffe/proto/caffe_pb2.py"   # generated by this protoc, not the sdist's stale copy
touch "$STAGE/caffe/proto/__init__.py"
mkdir -p "$WHEELDIR"
"$PY" - "$STAGE" "$WHEEL" "$VERSION+stl.cpu" "$PYTAG" "$PLAT" "$SRC/LICENSE" <<'EOF' || die "wheel packaging failed"
import base64, hashlib, os, sys, zipfile
stage, wheel, version, pytag, plat, license_file = sys.argv[1:]
dist = f"brocolli_caffe-{version}.dist-info"
meta = {
    f"{dist}/METADATA": (
        "Metadata-Version: 2.1\nName: brocolli-caffe\nVersion: " + version + "\n"
        "Summary: BVLC Caffe (commit 9b89154, CPU only) with pycaffe, built by stl tools/build_caffe.sh\n"
        "License: BSD-2-Clause\nRequires-Python: >=3.8\nRequires-Dist: numpy\n"
        "Requires-Dist: protobuf>=3.20.3\nRequires-Dist: six\nRequires-Dist: scipy\n"
        "Requires-Dist: scikit-image\n"),
    f"{dist}/WHEEL": (f"Wheel-Version: 1.0\nGenerator: stl-build_caffe\nRoot-Is-Purelib: false\n"
                      f"Tag: {pytag}-{pytag}-{plat}\n"),
    f"{dist}/top_level.txt": "caffe\n",
    f"{dist}/LICENSE": open(license_file).read(),  # Caffe's BSD-2 notice travels with the binary
}
records = []
def rec(name, data):
    h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    records.append(f"{name},sha256={h},{len(data)}")
tmp = wheel + ".part"
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
    for root, dirs, files in os.walk(stage):
        dirs.sort()
        for fn in sorted(files):
            p = os.path.join(root, fn)
            arc = os.path.relpath(p, stage)
            data = open(p, "rb").read()
            zi = zipfile.ZipInfo(arc, (2020, 1, 1, 0, 0, 0))
            zi.external_attr = (0o755 if fn.endswith(".so") else 0o644) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
            rec(arc, data)
    for arc, text in meta.items():
        z.writestr(arc, text)
        rec(arc, text.encode())
    records.append(f"{dist}/RECORD,,")
    z.writestr(f"{dist}/RECORD", "\n".join(records) + "\n")
os.replace(tmp, wheel)
EOF
say "wheel cached: $WHEEL ($(du -h "$WHEEL" | cut -f1))"

# ---- 6. install + verify ---------------------------------------------------------------
install_wheel
verify
say "done in $(( $(date +%s) - T0 )) s (the build tree in $BUILD can be deleted; the wheel is enough)"
