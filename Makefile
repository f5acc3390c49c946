VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := experiments/demo

.PHONY: test test-fast lint demo bench docs clean gpu-rehearsal

# pip's own lines are the progress of the first install (torch alone is hundreds of MB to fetch);
# once the stamp is newer than pyproject.toml, nothing runs
$(STAMP): pyproject.toml
	@echo "make: installing spkemb, its libraries (torch among them) and its test tools into $(VENV)/:" \
	      "minutes the first time, once"
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar on -e '.[test,docs]'
	touch $(STAMP)
	@echo "make: $(VENV)/ is ready"

# Python's bytecode cache is written (__pycache__/, ignored by git) even where the environment sets
# PYTHONDONTWRITEBYTECODE: otherwise each of the suite's engine processes compiles the modules it
# imports again, and each worker rewrites every test module's asserts again
TEST_ENV := PYTHONDONTWRITEBYTECODE=
# each process of the measured suite imports the libraries untraced (tests/coverage_site/sitecustomize.py)
COVERAGE_ENV := PYTHONPATH="$(CURDIR)/tests/coverage_site$${PYTHONPATH:+:$$PYTHONPATH}"

# the suite on every core (pytest-xdist; the slow tests start first, idle workers steal queued ones),
# with the coverage of engine/ and app/ (engine subprocesses included) and the 25 slowest tests
test: $(STAMP)
	$(TEST_ENV) $(COVERAGE_ENV) $(PY) -m pytest -q -n auto --dist worksteal --cov --cov-report=term

test-fast: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -q -n auto --dist worksteal -m "not slow"

# ruff (pyproject's [tool.ruff]) on the whole tree, then mypy ([tool.mypy]) on engine/ and app/
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy engine app

$(DEMO)/config.yml: $(STAMP)
	$(VENV)/bin/spkemb-engine demo-workspace $(DEMO)

demo: $(DEMO)/config.yml
	$(VENV)/bin/spkemb-tui --workspace $(DEMO)

# the docs site (mkdocs.yml, docs/) into site/; --strict: a broken link or a warning fails
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

bench: $(STAMP)
	$(PY) bench/store.py
	$(PY) bench/train_throughput.py
	$(PY) bench/extract.py
	$(PY) bench/tui_start.py
	$(PY) bench/engine_start.py
	$(PY) bench/scale.py --sizes 10k,100k
	$(PY) bench/file_reads.py
	$(PY) bench/clean.py
	$(PY) bench/lab_lookups.py

# The lent GPU machine rehearsed on this CPU: a fresh virtualenv (.rehearsal/, git-ignored) with CPython
# 3.12, torch 2.11.0 and torchaudio 2.11.0 (PyPI's build, run on the CPU) and only the packages that
# machine's python3 has, then the wheels bench/gpu_wheels.sh carries there, then bench/gpu.sh to the end
# at its CPU sizes with that python. REHEARSAL_PYTHON names another CPython 3.12.
REHEARSAL := .rehearsal
REHEARSAL_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3.12)
gpu-rehearsal:
	$(REHEARSAL_PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12) and "gpu-rehearsal: $(REHEARSAL_PYTHON) is no CPython 3.12 (set REHEARSAL_PYTHON)")'
	rm -rf $(REHEARSAL)
	$(REHEARSAL_PYTHON) -m venv $(REHEARSAL)/venv
	$(REHEARSAL)/venv/bin/python -m pip install --quiet torch==2.11.0 torchaudio==2.11.0 \
		numpy pandas scipy pyyaml rich onnx onnxruntime matplotlib
	PIP_PYTHON=$(REHEARSAL)/venv/bin/python bench/gpu_wheels.sh
	PYTHON=$(REHEARSAL)/venv/bin/python WORK=$(CURDIR)/$(REHEARSAL)/work bench/gpu.sh

clean:
	rm -rf $(VENV) .pytest_cache site
