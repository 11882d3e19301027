# canary-gatekeeper: developer entry points. Everything runs inside .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint typecheck layers unit demo bench protos clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check gatekeeper controller tests benchmarks tools
	$(BIN)/ruff format --check gatekeeper controller tests benchmarks tools

typecheck: venv
	$(BIN)/mypy gatekeeper controller

layers: venv
	$(BIN)/lint-imports

unit: venv
	$(BIN)/python -m pytest -q

test: lint typecheck layers unit

demo: venv
	$(BIN)/gatekeeper demo

bench: venv
	$(BIN)/python benchmarks/judge_cost.py

protos: venv
	$(BIN)/python tools/genproto.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
