# The two quick-start commands: `make run` and `make test`. Both create .venv on first use
# (pinned dependencies from pyproject.toml) and reuse it afterwards.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
IMAGE ?= ghcr.io/dlx-project/dlx:0.1.0
DOCKER ?=
ENGINE_FLAG = $(if $(DOCKER),--engine $(DOCKER))
BUILD_FLAGS = $(if $(BASE),--base $(BASE)) $(if $(HOST_PIP),--host-pip)

.PHONY: install run test compile benchmark bench-env image image-gpu base-image image-test gpu-check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[train,cluster,test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/dlx run mnist-cnn

test: $(STAMP)
	$(BIN)/python -m pytest

compile: $(STAMP)
	$(BIN)/dlx compile all -o compiled --image $(IMAGE)

benchmark: $(STAMP)
	$(BIN)/python -m benchmarks.mnist --data-dir ../shared/data/mnist

# The ratings benchmark's Surprise peers need NumPy 1.x, so they get their own environment.
bench-env: .venv-bench/.installed

.venv-bench/.installed: benchmarks/requirements-surprise.txt
	@test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements-surprise.txt
	@touch $@

# The container image (containers/README.md): $(IMAGE) on CPU, $(IMAGE)-gpu with CUDA, built with
# Docker or Podman (DOCKER=podman to choose). BASE= another base image; HOST_PIP=1 hands this host's
# pip settings (its CA, local wheel folders) to the build; base-image builds a Debian base from
# Debian's packages where no registry is reachable (make image then uses it).
image:
	$(PYTHON) containers/build.py $(ENGINE_FLAG) image --tag $(IMAGE) $(BUILD_FLAGS)

image-gpu:
	$(PYTHON) containers/build.py $(ENGINE_FLAG) image --tag $(IMAGE)-gpu --variant gpu $(BUILD_FLAGS)

base-image:
	$(PYTHON) containers/build.py $(ENGINE_FLAG) base

# Builds the base and the image here, runs a topic in it through kfp.local's DockerRunner and
# SageMaker's local mode (with an interruption), next to the subprocess runner (not part of make test).
image-test: $(STAMP)
	$(BIN)/python -m benchmarks.image --image $(IMAGE) $(if $(DOCKER),--engine $(DOCKER)) $(if $(HOST_PIP),--host-pip)

# One epoch of a Keras topic and of each PyTorch topic on the GPU with mixed precision, resume on
# the GPU, throughput against the CPU; says so in one line where there is no GPU.
gpu-check: $(STAMP)
	$(BIN)/python -m benchmarks.gpu_check

clean:
	rm -rf $(VENV) .venv-bench runs compiled .pytest_cache
