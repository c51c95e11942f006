# Updraft's image: `updraft serve` (metrics API + KEDA scaler) and `updraft provisioner`, as the
# Deployments in manifests/base and manifests/provisioner run them (image updraft:0.1.0; build
# with `make image`).
#
# Two stages: the builder installs the package and its wheels into a virtualenv; the runtime
# stage copies only that virtualenv onto a slim Python, so no compiler, pip cache or source
# tree ships. The runtime writes nothing outside /tmp (an emptyDir in the Deployments), so it
# runs with readOnlyRootFilesystem: no bytecode caches, HOME under /tmp.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/updraft
WORKDIR /src
COPY pyproject.toml README.md ./
COPY updraft updraft
COPY adapter adapter
COPY keda keda
COPY scalers scalers
COPY provisioner provisioner
COPY kube kube
COPY kits kits
# A regular (non-editable) install: the runtime stage has no /src. Bytecode is compiled here,
# once, so the read-only runtime never needs to write it.
RUN /opt/updraft/bin/pip install . \
    && /opt/updraft/bin/python -m compileall -q /opt/updraft/lib

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/updraft/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=builder /opt/updraft /opt/updraft
# 65532: the conventional "nonroot" uid/gid, the one the Deployments' securityContext names.
USER 65532:65532
WORKDIR /tmp
EXPOSE 6443 9090 8080
ENTRYPOINT ["/opt/updraft/bin/updraft"]
CMD ["--help"]
