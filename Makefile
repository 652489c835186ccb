# sela-jupyter: `make demo` runs the main job on the built-in defaults, `make test` passes every test.
# Both install everything they need first (Python venv in .venv, the labextension, test tools).

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-python test-js ui-test lint format bench clean

$(VENV)/.installed: pyproject.toml package.json
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/sela run examples/housing.csv --target price --rollouts 10 --parallel 2
	@echo "--- examples/house_prices.ipynb: %sela on a live DataFrame, insert, export, predict"
	cd examples && $(abspath $(BIN))/jupyter execute house_prices.ipynb

lint: install
	$(BIN)/ruff check sela_jupyter tests benchmarks examples
	$(BIN)/ruff format --check sela_jupyter tests benchmarks examples
	$(BIN)/jlpm lint:check

format: install
	$(BIN)/ruff format sela_jupyter tests benchmarks examples
	$(BIN)/ruff check --fix sela_jupyter tests benchmarks examples
	$(BIN)/jlpm prettier && $(BIN)/jlpm eslint

test-python: install
	$(PY) -m pytest

test-js: install
	$(BIN)/jlpm test

# galata UI tests in Debian's chromium against a real JupyterLab (a few minutes).
ui-test: install
	$(BIN)/jlpm build
	$(BIN)/jupyter labextension develop --overwrite . >/dev/null
	test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)
	cd ui-tests && $(abspath $(BIN))/jlpm install && CI=1 $(abspath $(BIN))/jlpm test

test: install lint test-js test-python ui-test
	$(BIN)/jupyter labextension list 2>&1 | grep -q "sela-jupyter.*enabled.*OK"

AUTOGLUON_VENV ?= .venv-autogluon

$(AUTOGLUON_VENV)/.installed: benchmarks/autogluon-requirements.txt
	python3 -m venv $(AUTOGLUON_VENV)
	$(AUTOGLUON_VENV)/bin/pip install --quiet --upgrade pip
	$(AUTOGLUON_VENV)/bin/pip install --quiet -r benchmarks/autogluon-requirements.txt
	touch $@

bench: install $(AUTOGLUON_VENV)/.installed
	$(PIP) install --quiet -e ".[bench]"
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/compare.py --budget 60 --datasets all --seeds 0,1,2

clean:
	rm -rf $(VENV) $(AUTOGLUON_VENV) node_modules lib sela_jupyter/labextension .sela
