# canary-gatekeeper: developer entry points. Everything runs inside .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint typecheck layers unit system-deps demo bench bench-analyze bench-grpc protos clean

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
	$(BIN)/mypy gatekeeper controller benchmarks tests

layers: venv
	$(BIN)/lint-imports

unit: venv system-deps
	$(BIN)/python -m pytest -q

# Debian's prometheus for the integration tests (needs root, as CI has).
system-deps:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || { \
	  echo "installing Debian's prometheus (tests start it on 127.0.0.1)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }

test: lint typecheck layers unit

demo: venv
	$(BIN)/gatekeeper demo

# The small Judge is compared with the last commit before the two-margin rule.
BENCH_AGAINST ?= d535842
bench: venv
	$(BIN)/python benchmarks/judge_cost.py --against $(BENCH_AGAINST)

bench-analyze: venv system-deps
	$(BIN)/python benchmarks/analyze_cost.py

bench-grpc: venv
	$(BIN)/python benchmarks/grpc_load.py

# Decision quality against Argo Rollouts, Flagger and Kayenta rules (~10 min on 2 cores).
.PHONY: bench-quality
bench-quality: venv
	$(BIN)/python -m benchmarks.decision_quality

# Replays per second: the local pool against a Dask LocalCluster of 2 workers (~6 min on 2 busy cores).
.PHONY: bench-replay
bench-replay: venv
	$(BIN)/python benchmarks/replay_throughput.py

protos: venv
	$(BIN)/python tools/genproto.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
