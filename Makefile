# kexue_notes: the two set-up commands of the README are `make book` and `make test`.
# Both create .venv (torch first, then the pinned requirements) and the local MathJax when missing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MATHJAX := _mathjax/mathjax/tex-chtml.js
JB_FLAGS := -W -n --keep-going --all

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# one BLAS thread per notebook kernel (see book/_ext/page_executions.py)
export OPENBLAS_NUM_THREADS ?= 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Pages draw with the inline backend; an inherited MPLBACKEND (e.g. Agg) would drop their figures.
unexport MPLBACKEND

.PHONY: book test bench lint serve lab lock clean

book: $(STAMP) $(MATHJAX)  ## Build the HTML book into _build/html (strict: warnings are errors).
	$(BIN)/jupyter-book build . $(JB_FLAGS)

test: $(STAMP) $(MATHJAX)  ## Lint and type-check, then every test: package, pages (run once each, then checked by a second run), strict book build.
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench:  ## Time the phases of a `make test` from a fresh clone of HEAD (a benchmark, not a test).
	$(PYTHON) tests/bench.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

serve: book  ## Serve the built book at http://localhost:8000
	$(BIN)/python -m http.server 8000 --directory _build/html

lab: $(STAMP)  ## Open the pages as notebooks in JupyterLab (jupytext reads the .md files).
	$(BIN)/jupyter lab book

# torch goes in first and alone, with pip (which finds the CPU wheel where pip is configured to
# look): any other order pulls several GB of CUDA wheels. The rest goes in with uv (pinned in
# constraints.txt), which installs the same pinned versions about three times faster than pip,
# and compiles their bytecode up front, so no page pays for it.
$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt torch
	$(BIN)/python -m pip install --quiet -c constraints.txt uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode \
	    -r requirements.txt -c constraints.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

# MathJax 3 from npm (pinned by package-lock.json), trimmed to what tex-chtml needs, outside _static/.
$(MATHJAX): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf _mathjax && mkdir -p _mathjax/mathjax/output
	cp -r node_modules/mathjax/es5/tex-chtml.js node_modules/mathjax/es5/input \
	      node_modules/mathjax/es5/ui _mathjax/mathjax/
	cp -r node_modules/mathjax/es5/output/chtml node_modules/mathjax/es5/output/chtml.js \
	      _mathjax/mathjax/output/
	touch $@

# Refresh constraints.txt from the current environment after changing requirements.txt.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | sed 's/^torch==.*/torch==2.13.0/' > constraints.txt

clean:
	rm -rf _build _mathjax
