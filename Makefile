# The README's two commands: `make demo` and `make test`. Each creates .venv when missing.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m neuralcodec.demo

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m pip install -e '.[test,bench]'
	$(PY) benchmarks/entropy_throughput.py --json benchmarks/results/entropy_throughput.json
	$(PY) benchmarks/image_speed.py --json benchmarks/results/image_speed.json
	$(PY) benchmarks/kodak_rd.py --out benchmarks/results/kodak
	$(PY) benchmarks/lossless_rate.py --dataset mnist --out benchmarks/results/lossless
	$(PY) benchmarks/lossless_rate.py --dataset fashion-mnist --out benchmarks/results/lossless
	$(PY) benchmarks/lossless_speed.py --out benchmarks/results/lossless

clean:
	rm -rf $(VENV) build *.egg-info demo-output
