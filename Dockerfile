# One image for every synthtasks process. There is no ENTRYPOINT: the container's
# command is the console script of the process to run (see docs/conventions.md),
# chosen by docker-compose.yml and deploy/k8s/:
#
#   docker run --rm synthtasks synthtasks-gateway
#   docker run --rm synthtasks synthtasks-provider-registry migrate
#   docker run --rm synthtasks synthtasks-worker --processes 1 --threads 8
#
# It builds with BuildKit and with the classic builder, from the base image alone: no
# frontend image (no `# syntax=` line), no compiler, nothing fetched but the locked wheels.
# The local LLM (llama.cpp, compiled) has its own Dockerfile in deploy/local-llm/, so
# building this image never compiles it.
#
# Pin the base image by digest in CI (python:3.11-slim@sha256:...) for repeatable builds.
ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------
# builder: a virtualenv holding the project and its dependencies
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# The venv lives at the same path in the final stage (venvs are not relocatable) and has
# no pip of its own: the base image's pip installs into it with --python, so neither pip
# nor setuptools ends up in what the runtime stage copies.
RUN python -m venv --without-pip /opt/synthtasks
ENV PATH=/opt/synthtasks/bin:$PATH
WORKDIR /src

# Dependencies first, exactly the versions in requirements.lock (`make lock` refreshes
# it from pyproject.toml), so that editing the code does not reinstall them and the
# image's contents do not depend on the day of the build. Every one ships manylinux
# wheels (psycopg[binary] bundles libpq): no compiler is needed.
COPY requirements.lock ./
RUN pip --python /opt/synthtasks/bin/python install --no-deps --only-binary :all: -r requirements.lock

# Then the project itself (packages: services, synthtasks_cli, gen/python/synthtasks);
# `pip check` proves the lock satisfies pyproject.toml's requirements.
COPY pyproject.toml README.md ./
COPY gen ./gen
COPY services ./services
COPY synthtasks_cli ./synthtasks_cli
RUN pip --python /opt/synthtasks/bin/python install --no-deps . \
    && pip --python /opt/synthtasks/bin/python check

# ---------------------------------------------------------------------------
# runtime (default target): the venv only, no compiler, no pip or setuptools, non-root
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# The base image's own pip and setuptools are build tools: nothing at run time needs them.
RUN python -m pip uninstall --yes --quiet pip setuptools wheel

# A fixed numeric uid/gid so that Kubernetes' runAsNonRoot can verify it and
# runAsUser: 10001 in deploy/k8s matches.
RUN groupadd --system --gid 10001 synthtasks \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin synthtasks

COPY --from=builder /opt/synthtasks /opt/synthtasks

# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only in Kubernetes (pip already
# compiled the bytecode at build time). PYTHONUNBUFFERED: JSON log lines leave at once.
ENV PATH=/opt/synthtasks/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

USER 10001:10001
WORKDIR /tmp

# 50051-50053: gRPC (gateway, provider registry, task store); 8080: the review web app (HTTP);
# 9101-9105: Prometheus metrics.
EXPOSE 50051 50052 50053 8080 9101 9102 9103 9104 9105

# gRPC health checking protocol. The default port is the gateway's; the other gRPC
# services set SYNTHTASKS_HEALTH_PORT (or override the check, as docker-compose.yml
# does). Workers have no gRPC port: compose asks /readyz on their metrics port instead, and
# Kubernetes uses its own probes and ignores HEALTHCHECK. Shell form, for the ${...}.
# hadolint ignore=DL3025
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD synthtasks-healthcheck "127.0.0.1:${SYNTHTASKS_HEALTH_PORT:-50051}"

CMD ["synthtasks-gateway"]
