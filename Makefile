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
# Installed without their declared dependencies: syncnet-python pulls torchvision (no CPU build here, and it
# breaks diffusers), scenedetect 0.6 pins click<8.3 against huggingface-hub, insightface pulls opencv-python
# beside mediapipe's opencv-contrib-python. pyproject.toml lists what they really need.
NO_DEPS := syncnet-python "scenedetect>=0.6,<0.7" insightface

.PHONY: setup demo test

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --disable-pip-version-check "$(TORCH_SPEC)"
	$(PY) -m pip install --disable-pip-version-check -q -e ".[test]"
	$(PY) -m pip install --disable-pip-version-check -q --no-deps $(NO_DEPS)
	@touch $@

DEMO_PASSWORD ?= portrait-demo
PORT ?= 7860

demo: setup
	$(BIN)/pairs generate --campaign $(DEMO)/campaign --conditions 3 --candidates 4
	$(BIN)/pairs world --out $(DEMO)/gold --conditions 2 --seed 7 --size 64 --seconds 3 --variants shift
	$(BIN)/pairs ingest $(DEMO)/gold/manifest.csv --campaign $(DEMO)/campaign
	$(BIN)/pairs score --campaign $(DEMO)/campaign
	$(BIN)/pairs summary --campaign $(DEMO)/campaign
	@printf '%s\n' "$(DEMO_PASSWORD)" > $(DEMO)/demo-password
	@$(BIN)/annotate users add demo --campaign $(DEMO)/campaign --password-file $(DEMO)/demo-password
	@$(BIN)/annotate users add admin --role admin --campaign $(DEMO)/campaign --password-file $(DEMO)/demo-password
	@echo "demo logins: demo / $(DEMO_PASSWORD) (annotator), admin / $(DEMO_PASSWORD) (admin)"
	$(BIN)/annotate serve --campaign $(DEMO)/campaign --port $(PORT)

test: setup
	$(PY) -m pytest -q
