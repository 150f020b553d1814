# Every target installs into a local virtual environment on first use, through
# constraints.txt (which pins torch to the CPU wheel).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-env venv clean-venv

# A second environment for the aggregation benchmark: byzsgd beside ByzFL, the
# reference library, installed without its declared dependencies (they would pull
# a CUDA torch and torchvision). `make bench` uses it when it exists.
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
BYZFL_VERSION ?= 0.0.11
BENCH_PYTHON = $(if $(wildcard $(BENCH_STAMP)),$(BENCH_VENV)/bin/python,$(BIN)/python)

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/byzsgd run $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks

test: lint system-deps
	$(BIN)/python -m pytest -q

# The loopback test of the Ray runtime traces system calls with strace.
system-deps:
	@command -v strace >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get install -y -q strace >/dev/null 2>&1 || \
			{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q strace >/dev/null; }; \
		else echo "install strace for the Ray loopback test"; fi; }

bench: $(STAMP)
	$(BENCH_PYTHON) benchmarks/aggregators.py $(ARGS)
	$(BIN)/python benchmarks/simulator.py

bench-env: $(BENCH_STAMP)

$(BENCH_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt torch numpy -e .
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		--no-deps byzfl==$(BYZFL_VERSION)
	touch $(BENCH_STAMP)

clean-venv:
	rm -rf $(VENV)
