# The two quick-start commands: `make run` and `make test`. Both create .venv on first use
# (pinned dependencies from pyproject.toml) and reuse it afterwards.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
IMAGE ?= ghcr.io/dlx-project/dlx:0.1.0
DOCKER ?= docker

.PHONY: install run test compile benchmark image image-gpu clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[train,test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/dlx run mnist-cnn

test: $(STAMP)
	$(BIN)/python -m pytest

compile: $(STAMP)
	$(BIN)/dlx compile all -o compiled --image $(IMAGE)

benchmark: $(STAMP)
	$(BIN)/python -m benchmarks.mnist --data-dir ../shared/data/mnist

# The container images (containers/README.md): $(IMAGE) on CPU, $(IMAGE)-gpu with CUDA.
image:
	$(call docker_build,containers/Dockerfile,$(IMAGE))

image-gpu:
	$(call docker_build,containers/Dockerfile.gpu,$(IMAGE)-gpu)

define docker_build
@command -v $(DOCKER) >/dev/null 2>&1 || { echo "make: $(DOCKER) not found; building the image needs Docker, or set DOCKER=podman" >&2; exit 1; }
$(DOCKER) build -f $(1) -t $(2) .
endef

clean:
	rm -rf $(VENV) runs compiled .pytest_cache
