# Two commands on a fresh machine:
#   make demo              napari with the plugin's docks on a sample tomogram (HEADLESS=1: same pipeline, no screen)
#   make test              lint + the quick tests (about a minute; tests marked 'slow' are left out)
#   make test-all          lint + every test, as CI runs it (real napari windows run under Xvfb)
# All create .venv, install the package with its test extras and the system libraries napari needs;
# the first run downloads and installs napari, torch and the rest: a few minutes.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch 2.13.0 CPU: pip takes the wheel on this machine's disk; any other version downloads gigabytes.
TORCH ?= torch==2.13.0
HEADLESS ?=
DEMO_OUT ?= demo-output
XVFB := xvfb-run -a -s "-screen 0 1600x1000x24"

.PHONY: install system-deps demo test test-all lint benchmark screenshots clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install $(TORCH)
	$(BIN)/pip install -e '.[testing]'
	touch $@

install: $(BIN)/.installed

system-deps:
	bash scripts/install-system-deps.sh

demo: install
ifeq ($(HEADLESS),)
	@$(MAKE) --no-print-directory system-deps
	@if [ -n "$$DISPLAY" ]; then $(BIN)/python scripts/demo.py; \
	else echo "no \$$DISPLAY: running napari on a virtual screen (Xvfb); use HEADLESS=1 for files only"; \
	$(XVFB) $(BIN)/python scripts/demo.py --quit-after 60; fi
else
	$(BIN)/python scripts/demo.py --headless --out $(DEMO_OUT) --overwrite
endif

test: lint system-deps
	$(XVFB) $(BIN)/python -m pytest -p no:cacheprovider -m "not slow" $(PYTEST_ARGS)

test-all: lint system-deps
	$(XVFB) $(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

benchmark: install
	$(BIN)/cryoet-particles benchmark --out docs/benchmarks.md

screenshots: install system-deps
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) build src/*.egg-info
