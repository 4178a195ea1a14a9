# `make demo` and `make test` work from a fresh clone: each creates .venv
# when it is missing and installs skvem with the extras it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= skvem-demo

.PHONY: demo demo-quick test docs bench examples clean-venv

$(VENV)/.installed-%: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(subst +,$(comma),$*)]'
	@touch $@

comma := ,

demo: $(VENV)/.installed-demo
	$(VENV)/bin/skvem demo --out $(OUT)

demo-quick: $(VENV)/.installed-demo
	$(VENV)/bin/skvem demo --quick --out $(OUT)

# The test suite, then every docstring example of the package (doctests).
test: $(VENV)/.installed-test+demo
	$(PY) -m pytest -q tests
	$(PY) -m pytest -q --doctest-modules skvem

docs: $(VENV)/.installed-docs+demo
	$(MAKE) -C docs html SPHINXBUILD=$(abspath $(VENV))/bin/sphinx-build

bench: $(VENV)/.installed-test+demo
	$(PY) benchmarks/run.py --json benchmarks/results.json
	$(PY) benchmarks/render_docs.py

# Every gallery script, offline (a few minutes each on 2 CPU cores).
examples: $(VENV)/.installed-test+demo
	@set -e; for f in examples/plot_*.py; do echo "== $$f"; HF_HUB_OFFLINE=1 $(PY) $$f; done

clean-venv:
	rm -rf $(VENV)
