# The two quick-start commands: `make run` and `make test`. Both create .venv on first use
# (pinned dependencies from pyproject.toml) and reuse it afterwards.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
IMAGE ?= ghcr.io/dlx-project/dlx:0.1.0

.PHONY: install run test compile benchmark clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/dlx run mnist-cnn

test: $(STAMP)
	$(BIN)/python -m pytest

compile: $(STAMP)
	$(BIN)/dlx compile all -o compiled --image $(IMAGE)

benchmark: $(STAMP)
	$(BIN)/python -m benchmarks.mnist --data-dir ../shared/data/mnist

clean:
	rm -rf $(VENV) runs compiled .pytest_cache
