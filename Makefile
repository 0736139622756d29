# Missive — the two commands a newcomer needs are `make run` and `make test`.
# Everything else these targets need is installed into .venv from pyproject.toml and
# the pinned versions in requirements.lock.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SERVICES := $(BIN)/python -m config.devservices
# mypy's Django plugin loads the test settings, which only ask that these be set: nothing
# connects to them while the code is checked.
TYPECHECK_ENV := DATABASE_URL=postgresql://localhost/missive REDIS_URL=redis://localhost:6379/0

.PHONY: run test lint format bench lock check clean help

help:
	@echo "make run    start Missive (web, worker, beat, mail catcher) on embedded PostgreSQL and Redis"
	@echo "make test   run the whole test suite against real PostgreSQL and Redis"
	@echo "make lint   ruff, the layers contract (import-linter), mypy, makemigrations --check"
	@echo "make bench  run the benchmarks in benchmarks/"
	@echo "make lock   re-pin requirements.lock after changing pyproject.toml"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev,test]'
	@touch $(STAMP)

run: $(STAMP)
	$(SERVICES) run

test: $(STAMP)
	$(SERVICES) exec -- $(BIN)/python manage.py makemigrations --check --dry-run --settings=config.settings.test
	$(SERVICES) exec -- $(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(TYPECHECK_ENV) $(BIN)/mypy
	$(SERVICES) exec -- $(BIN)/python manage.py makemigrations --check --dry-run --settings=config.settings.test

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(SERVICES) exec -- $(BIN)/python -m benchmarks $(BENCH_ARGS)

lock: $(BIN)/python
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet '.[dev,test]'
	.lock-venv/bin/python -m pip freeze --exclude missive > requirements.lock
	rm -rf .lock-venv build *.egg-info

clean:
	rm -rf $(VENV) build *.egg-info
