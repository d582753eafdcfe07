# The two commands of the README: `make demo` and `make test`. Both set up first.
#
# Set-up uses the active virtual environment if there is one, else creates .venv. torch is installed
# first, from TORCH_SPEC, unless a torch is already importable: plain `pip install torch` pulls
# gigabytes of CUDA wheels on a CPU machine.
TORCH_SPEC ?= torch==2.13.0
VENV ?= .venv
BIN := $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV)/bin,$(VENV)/bin)
PY := $(BIN)/python
STAMP := $(BIN)/.portrait-dpo-installed
DEMO ?= demo

.PHONY: setup demo test

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --disable-pip-version-check "$(TORCH_SPEC)"
	$(PY) -m pip install --disable-pip-version-check -q -e ".[test]"
	@touch $@

demo: setup
	$(BIN)/pairs generate --campaign $(DEMO)/campaign --conditions 3 --candidates 4
	$(BIN)/pairs summary --campaign $(DEMO)/campaign

test: setup
	$(PY) -m pytest -q
