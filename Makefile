VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test clean

setup: $(STAMP)

# torch==2.13.0 first, so a CPU machine takes the CPU build instead of a multi-GB CUDA one.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,tensorrt-rtx]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/hieramp demo --out demo-output

test: setup
	# Two test workers on two cores: one intra-op thread each, or OpenMP oversubscribes the cores.
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 tests

clean:
	rm -rf $(VENV) demo-output
