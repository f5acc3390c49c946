VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := experiments/demo

.PHONY: test test-fast lint demo bench docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,docs]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# ruff (pyproject's [tool.ruff]) on the whole tree, then mypy ([tool.mypy]; the overrides list what is not yet clean)
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
	$(PY) bench/scale.py --sizes 10k,100k

clean:
	rm -rf $(VENV) .pytest_cache site
