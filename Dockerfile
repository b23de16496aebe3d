# syntax=docker/dockerfile:1
# Adapter Registry: API server image (see docs/deploy.md). Not built in this repository's
# tests (no container engine here); tests/deploy/test_dockerfile.py checks its rules.

# --- Stage 1: build the wheel --------------------------------------------------------------
FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml constraints.txt README.md ./
COPY registry ./registry
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- Stage 2: runtime ------------------------------------------------------------------------
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
COPY constraints.txt /tmp/constraints.txt
COPY --from=build /wheels /tmp/wheels
# Every dependency at the version constraints.txt pins (the same file as CI and `make`).
RUN pip install -c /tmp/constraints.txt /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels /tmp/constraints.txt

RUN groupadd --system --gid 10001 registry \
    && useradd --system --uid 10001 --gid registry --home-dir /var/lib/adapter-registry \
       --shell /usr/sbin/nologin registry \
    && mkdir -p /var/lib/adapter-registry \
    && chown registry:registry /var/lib/adapter-registry
WORKDIR /var/lib/adapter-registry
USER 10001:10001

EXPOSE 8000
ENTRYPOINT ["adapter-registry"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
