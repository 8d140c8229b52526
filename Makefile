# `make run` and `make test` set up .venv (reused while pyproject.toml and constraints.txt are
# unchanged), then run the main job or the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.convzoo-installed

.PHONY: setup run test test-all test-notebooks lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# The main job: LeNet-5 on the MNIST subset that ships inside the package.
run: setup
	$(VENV)/bin/convzoo train lenet5 --data mnist --out runs/lenet5-mnist-embedded

# Both cores (pytest-xdist): each worker and the processes it starts on one torch thread
# (tests/conftest.py); worksteal rebalances the long tests. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: setup
	$(PY) -m pytest -q --ignore=tests/notebooks -n $(TEST_WORKERS) --dist worksteal

test-all: setup
	$(PY) -m pytest -q -m "slow or not slow"

# Every notebook of notebooks/ run top to bottom in a kernel of .venv, one after another (two
# at once oversubscribe the 2 cores: 84 s instead of 12 for 02_lenet); .ci/run runs it after make test.
test-notebooks: setup
	$(PY) -m pytest -q tests/notebooks

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts notebooks
	$(PY) scripts/notebooks.py --check

clean:
	rm -rf runs .pytest_cache
