# Everything a fresh machine needs: `make serve` runs the server, `make test` runs the checks.
# Both create .venv and install the pinned requirements first (once; again when they change).

VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTHON  ?= python3
export PATH := $(CURDIR)/$(BIN):$(PATH)

# llama.cpp is compiled for portable x86-64-v3 (AVX2/FMA/F16C), not -march=native: a native build
# picks up AMX on CPUs that advertise it, and in VMs that do not enable AMX state it crashes on the
# first multi-token batch. pip caches the built wheel; after changing these flags run
# `pip cache remove llama_cpp_python` so the new flags take effect.
LLAMA_CMAKE_ARGS :=
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS += -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
endif
export CMAKE_ARGS ?= $(LLAMA_CMAKE_ARGS)
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)

.PHONY: install system-deps serve test lint proto proto-check pytest bench print-cmake-args

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e clients/python -e .
	touch $@

install: $(STAMP)

serve: install
	$(BIN)/tokenwire serve $(ARGS)

test: install system-deps lint proto-check pytest

# What the tests need from Debian (tools/system-packages.d/*.txt: a command and the packages that
# provide it), installed when missing, as root or through sudo, so `make test` alone works on a
# fresh machine.
system-deps:
	@bash tools/system-deps.sh

lint: install
	buf lint

# The generators and toolchains of the TypeScript and Go clients: Debian's Go plugins, Go and its
# packaged modules, Node (tools/system-packages.d/clients.txt), and the npm packages of
# clients/typescript from its lockfile (protoc-gen-es among them).
TS_CLIENT := clients/typescript
$(TS_CLIENT)/node_modules/.installed: $(TS_CLIENT)/package.json $(TS_CLIENT)/package-lock.json
	cd $(TS_CLIENT) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: client-deps
client-deps: system-deps $(TS_CLIENT)/node_modules/.installed

# buf generate for the API (buf.gen.yaml), then for the standard protos the TypeScript runtime
# lacks (google/rpc and grpc/health vendored in clients/typescript/proto, google/api).
# $(1): an output folder (-o) or nothing.
GENERATE = buf generate $(1) && buf generate --template $(TS_CLIENT)/buf.gen.vendored.yaml $(1)
GENERATED := clients/go/gen clients/typescript/gen

# Regenerates the code from proto/ (commit the result). Generated folders are cleared first, so a
# removed proto file leaves no stale output behind.
proto: install client-deps
	rm -rf $(GENERATED)
	$(call GENERATE)

# Fails when the committed generated code (Python, Go, TypeScript) differs from what proto/
# generates now: a changed, missing or extra file.
proto-check: install client-deps
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; $(call GENERATE,-o $$tmp) || exit 1; \
	  for dir in $(GENERATED) $$(cd $$tmp && ls -d clients/python/tokenwire/*/); do \
	    diff -rq -x __init__.py -x __pycache__ $$tmp/$$dir $$dir \
	      || { echo "generated code is stale ($$dir): run 'make proto' and commit"; exit 1; }; \
	  done; echo "generated code is up to date"

pytest: install
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/grpc_vs_inprocess.py $(ARGS)
	$(BIN)/python bench/bridge_vs_grpc.py $(ARGS)

# The flags llama-cpp-python is compiled with (for building it by hand, or a baseline to match).
print-cmake-args:
	@echo "$(CMAKE_ARGS)"
