# syntax=docker/dockerfile:1.7
# Gateway image; also the one-shot migration image (`bio-platform migrate`): the four service
# packages are installed without their dependencies, only for their models and migrations.
#   docker build -f deploy/docker/gateway.Dockerfile -t bio-gateway .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# 1. dependencies (cached until a pyproject or a pin changes)
COPY constraints.txt deploy/docker/requirements.py ./
COPY shared/pyproject.toml shared/pyproject.toml
COPY gateway/pyproject.toml gateway/pyproject.toml
RUN python requirements.py shared gateway > requirements.txt \
 && pip install -c constraints.txt -r requirements.txt
# 2. the source
COPY shared shared
COPY gateway gateway
COPY services services
RUN pip install --no-deps ./shared ./gateway \
 && pip install --no-deps ./services/fingerprint ./services/face-recognition ./services/face-verify ./services/contour-mask

FROM ${PYTHON_IMAGE}
RUN useradd --create-home --uid 10001 bio && mkdir -p /var/lib/bio && chown bio /var/lib/bio
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 BIO_VAR_DIR=/var/lib/bio BIO_ENV=production
USER bio
WORKDIR /home/bio
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["bio-platform", "serve", "--host", "0.0.0.0", "--port", "8000"]
