# soundalike — the two commands a new user needs:
#   make demo   set up .venv and run the main job on the bundled demo library -> out/demo/
#   make test   set up .venv with the [dev] extras and run the whole test suite
PYTHON ?= python3
VENV   := .venv
PIP    := $(VENV)/bin/pip
PIPI   := $(PIP) install --disable-pip-version-check -q -c constraints.txt
# Users without a GPU: `make demo TORCH_INDEX=cpu` (or `make test TORCH_INDEX=cpu`) takes torch from
# PyTorch's CPU wheel index: torch 2.13.0+cpu is a 192 MB wheel, where PyPI's Linux torch brings
# the CUDA libraries (about 3 GB of wheels for torch 2.14.1; see README "Install").
# TORCH_INDEX=URL uses another index (a mirror). Empty (default): torch comes with the other
# dependencies from pip's configured index.
TORCH_INDEX ?=
TORCH_INDEX_URL := $(if $(filter cpu,$(TORCH_INDEX)),https://download.pytorch.org/whl/cpu,$(TORCH_INDEX))
# torch alone from that index (its own dependencies then come, pinned, from the usual index)
TORCH_FIRST := $(if $(TORCH_INDEX_URL),$(PIPI) --no-deps --index-url $(TORCH_INDEX_URL) torch,@true)
# musicnn ships the real trained weights of the default backend; its metadata pins numpy<1.17,
# so it is installed without its dependencies (soundalike reads the checkpoints itself).
MUSICNN := musicnn==0.1.0

.PHONY: demo test venv venv-dev clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --disable-pip-version-check -q --upgrade pip

$(VENV)/.stamp-demo: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(TORCH_FIRST)
	$(PIPI) -e ".[torch]"
	$(PIP) install --disable-pip-version-check -q --no-deps $(MUSICNN)
	touch $@

$(VENV)/.stamp-dev: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(TORCH_FIRST)
	$(PIPI) -e ".[dev]"
	$(PIP) install --disable-pip-version-check -q --no-deps $(MUSICNN)
	touch $@ $(VENV)/.stamp-demo

venv: $(VENV)/.stamp-demo
venv-dev: $(VENV)/.stamp-dev

demo: venv
	$(VENV)/bin/soundalike run demo --manifest demo/manifest.csv --db out/demo/library.db --out out/demo

test: venv-dev
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf out/demo .pytest_cache
