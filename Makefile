# Each target builds its own virtualenv, so a fresh machine needs only python3 and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
BENCH_INSTALLED := $(VENV)/.bench-installed
DEMO_DIR ?= build/demo
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: test demo bench clean

$(INSTALLED): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(BENCH_INSTALLED): $(INSTALLED)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $@

# Two worker processes, each test file whole in one of them (its module fixtures built once): 13-16 minutes on 2
# cores instead of 24, as most of a test's time is tracing TensorFlow functions, one core's work.
test: $(INSTALLED)
	$(PY) -m pytest --numprocesses 2 --dist loadfile tests

demo: $(INSTALLED)
	$(VENV)/bin/electra-ja demo --config configs/demo.yaml --work-dir $(DEMO_DIR)

bench: $(BENCH_INSTALLED)
	$(PY) benchmarks/data_prep.py --out docs/benchmarks.md
	$(PY) benchmarks/pretrain.py --out docs/benchmarks.md
	$(PY) benchmarks/finetune.py --out docs/benchmarks.md
	$(PY) benchmarks/serving.py --out docs/benchmarks.md

clean:
	rm -rf $(VENV) build
