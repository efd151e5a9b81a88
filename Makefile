VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test clean

setup: $(STAMP)

# The torch/torchvision pair first, from constraints.txt, which every later install keeps.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch torchvision
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,tensorrt-rtx]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/hieramp demo --out demo-output

test: setup
	# Two test workers on two cores: one intra-op thread each, or OpenMP oversubscribes the cores.
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 tests

clean:
	rm -rf $(VENV) demo-output
