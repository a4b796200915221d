# Two entry points for a fresh clone: `make repro` (set up, then run the pipeline) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# DVC stages run `python -m stages.<name>`: with the environment first on PATH they use its interpreter, activated or not.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE := 1
# glibc allocator settings that halve ST-GCN and transformer step times on CPU (reference/environment.md).
export MALLOC_MMAP_THRESHOLD_ := 1073741824
export MALLOC_TRIM_THRESHOLD_ := 4294967296

.PHONY: setup repro test lint bench lock plots-template

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

setup: $(VENV)/.installed

# The optional mmaction2 stack (pyproject extra `mm`) in the same environment; CI installs it to run the oracle tests.
.PHONY: setup-mm
$(VENV)/.installed-mm: $(VENV)/.installed pyproject.toml constraints.txt
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test,mm]"
	touch $@

setup-mm: $(VENV)/.installed-mm

repro: setup
	$(VENV)/bin/dvc repro

test: setup
	$(VENV)/bin/pytest -q

lint: setup
	$(VENV)/bin/ruff check kinemic stages tests benchmarks scripts

bench: setup
	for script in benchmarks/bench_*.py; do $(PY) $$script || exit 1; done

lock: setup
	$(PY) -m pip freeze --exclude-editable | grep -v '^kinemic' > constraints.tmp
	mv constraints.tmp constraints.txt

plots-template: setup
	PATH=$(VENV)/bin:$$PATH $(PY) scripts/offline_plots_template.py
