# Updraft's workflow. `make run` and `make test` work on a fresh machine with nothing else
# done first: both start with `setup`, which is idempotent and fast when nothing changed.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST_ARGS ?=
# `make test` runs the test files on this many pytest-xdist workers (each e2e worker has its own
# control plane); most e2e time is waiting for the cluster, so two overlap well even on 2 cores.
TEST_WORKERS ?= 2
API_PORT ?= 6443
GRPC_PORT ?= 9090
METRICS_PORT ?= 8080
IMAGE ?= updraft:0.1.0
# A daemonless builder first (buildah, podman); docker needs its engine running.
BUILDER ?= $(firstword $(shell command -v buildah podman docker 2>/dev/null))
CODE := updraft adapter keda scalers provisioner kube kits tests bench hack

.PHONY: help setup run test unit integration e2e lint fmt proto image cluster-up cluster-down bench

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

setup:  ## venv + deps, Debian packages for the test servers, control-plane binaries, KEDA, helm
	@bash hack/setup.sh

run: setup  ## metrics API on https://127.0.0.1:6443 + KEDA scaler on 127.0.0.1:9090, demo config
	@echo "updraft: metrics API https://127.0.0.1:$(API_PORT), gRPC 127.0.0.1:$(GRPC_PORT), /metrics :$(METRICS_PORT)"
	@echo "serving the MetricSources in examples/standalone.yaml; try, from another shell:"
	@echo "  curl -s --cacert .cache/serving/ca.crt https://localhost:$(API_PORT)/apis/external.metrics.k8s.io/v1beta1"
	@echo "  curl -s --cacert .cache/serving/ca.crt https://localhost:$(API_PORT)/apis/external.metrics.k8s.io/v1beta1/namespaces/default/quarter-hours"
	@echo "  $$(bash hack/kube/build.sh --print-dir)/grpcurl -plaintext -d '{\"namespace\": \"default\", \"scalerMetadata\": {\"metricSourceRef\": \"quarter-hours\"}}' \\"
	@echo "      127.0.0.1:$(GRPC_PORT) externalscaler.ExternalScaler/GetMetricSpec"
	@echo "  curl -s http://127.0.0.1:$(METRICS_PORT)/metrics | grep updraft_"
	.venv/bin/updraft serve --standalone-config examples/standalone.yaml --insecure-no-auth \
		--bind-address 127.0.0.1 --secure-port $(API_PORT) --cert-dir .cache/serving \
		--grpc-host 127.0.0.1 --grpc-port $(GRPC_PORT) --grpc-plaintext \
		--metrics-host 127.0.0.1 --metrics-port $(METRICS_PORT)

test: setup lint  ## install what the tests need, lint, then run every test tier
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

unit: setup  ## unit tests only (no servers, no cluster)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: setup  ## tests against real servers on loopback
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

e2e: setup  ## tests against the real control plane
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

lint: setup  ## ruff, mypy --strict, import-linter, generated stubs match proto/
	@bash hack/proto.sh --check
	.venv/bin/ruff check $(CODE)
	.venv/bin/ruff format --check $(CODE)
	.venv/bin/mypy $(CODE)
	.venv/bin/lint-imports

fmt: setup  ## apply ruff's fixes and formatting
	.venv/bin/ruff check --fix $(CODE)
	.venv/bin/ruff format $(CODE)

proto: setup  ## regenerate keda/_pb/ from proto/ (grpcio-tools pinned to grpcio)
	@bash hack/proto.sh

image:  ## the image the manifests run, updraft:0.1.0 (buildah, podman or docker)
	@if [ -z "$(BUILDER)" ]; then echo "make image: no buildah, podman or docker on PATH" >&2; exit 2; fi
	$(BUILDER) build -t $(IMAGE) -f Dockerfile .

cluster-up: setup  ## start the test control plane in the background (.cache/cluster/kubeconfig)
	@$(PY) -m tests.cluster up

cluster-down:  ## stop the test control plane and remove its state
	@if [ -x $(PY) ]; then $(PY) -m tests.cluster down; else rm -rf .cache/cluster; fi

bench: setup  ## run every benchmark; JSON reports go to .cache/bench/
	@bash hack/bench.sh
