VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := experiments/demo

.PHONY: test test-fast demo bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

$(DEMO)/config.yml: $(STAMP)
	$(VENV)/bin/spkemb-engine demo-workspace $(DEMO)

demo: $(DEMO)/config.yml
	$(VENV)/bin/spkemb-tui --workspace $(DEMO)

bench: $(STAMP)
	$(PY) bench/store.py
	$(PY) bench/train_throughput.py
	$(PY) bench/extract.py
	$(PY) bench/tui_start.py
	$(PY) bench/scale.py --sizes 10k,100k

clean:
	rm -rf $(VENV) .pytest_cache
