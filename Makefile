# The two set-up commands (README): `make run` and `make test`. Both install what they need and
# are idempotent: a virtualenv in .venv (re-installed when pyproject.toml changes) and Debian's
# influxdb package when `influxd` is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-faults check lint typecheck install influxd victoria-metrics clean

run: install
	$(VENV)/bin/energymon up

test: install lint typecheck
	$(PY) -m pytest -q -p no:cacheprovider

# The soak of the fault tests (RELIABILITY.md; a shorter run is part of `make test`): a longer replay
# with more of each fault (ENERGYMON_SOAK=1, ~15 min), then the crash test RUNS times in a row
# (default 10). Stops at the first failure; ENERGYMON_FAULT_SEED=N repeats a fault run's moments.
test-faults: install
	@set -o pipefail; ENERGYMON_SOAK=1 $(PY) -m pytest -q -s -p no:cacheprovider tests/integration/test_faults.py \
	  | grep -E "^fault|^after|^  |seed|passed|failed|Error"
	@set -o pipefail; for i in $$(seq $${RUNS:-10}); do echo "crash test run $$i"; \
	  $(PY) -m pytest -q -s -p no:cacheprovider tests/integration/test_restart.py -k killed | grep -E "crash run|passed|failed" \
	  || exit 1; done

check: lint typecheck

lint: install
	$(PY) -m ruff check .

typecheck: install
	$(PY) -m mypy

install: $(STAMP) influxd victoria-metrics

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

influxd:
	@command -v influxd >/dev/null 2>&1 || { \
	  echo "installing InfluxDB 1.x from Debian (influxd not found)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq influxdb; }

victoria-metrics:
	@command -v victoria-metrics >/dev/null 2>&1 || { \
	  echo "installing VictoriaMetrics from Debian (the v2 write API for the sink tests)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq victoria-metrics; }

clean:
	rm -rf $(VENV) .energymon .pytest_cache .mypy_cache .ruff_cache *.egg-info
