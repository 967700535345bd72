# syntax=docker/dockerfile:1.7
# Fingerprint service: API and Celery worker share this image (they differ by command).
#   docker build -f deploy/docker/fingerprint.Dockerfile -t bio-fingerprint .                        # CPU
#   docker build -f deploy/docker/fingerprint.Dockerfile --build-arg VARIANT=cuda -t bio-fingerprint:cuda .
# CPU: torch from the PyTorch CPU index. CUDA: torch's default (CUDA) build; the code picks the GPU
# when one is visible.
ARG VARIANT=cpu
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn
ARG UBUNTU=ubuntu24.04

FROM ${PYTHON_IMAGE} AS python

# --- runtime bases: a plain Debian Python, or the CUDA runtime with the same Python copied in ----------
FROM ${PYTHON_IMAGE} AS base-cpu
ENV TORCH_INDEX=https://download.pytorch.org/whl/cpu

FROM ${CUDA_IMAGE}-runtime-${UBUNTU} AS base-cuda
COPY --from=python /usr/local /usr/local
RUN apt-get update && apt-get install -y --no-install-recommends libopenblas0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* && ldconfig
ENV TORCH_INDEX=""

# --- dependencies (cached layer), then the source --------------------------------------------------
FROM base-${VARIANT} AS build
ARG VARIANT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY constraints.txt deploy/docker/requirements.py ./
COPY shared/pyproject.toml shared/pyproject.toml
COPY services/fingerprint/pyproject.toml services/fingerprint/pyproject.toml
RUN python requirements.py --variant ${VARIANT} shared services/fingerprint > requirements.txt \
 && pip install ${TORCH_INDEX:+--extra-index-url $TORCH_INDEX} -c constraints.txt -r requirements.txt "torch==2.13.0"
COPY shared shared
COPY services/fingerprint services/fingerprint
RUN pip install --no-deps ./shared ./services/fingerprint

FROM base-${VARIANT}
RUN useradd --create-home --uid 10001 bio && mkdir -p /var/lib/bio && chown bio /var/lib/bio
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 BIO_VAR_DIR=/var/lib/bio BIO_ENV=production \
    BIO_TORCH_THREADS=1 OMP_NUM_THREADS=1 TORCH_HOME=/var/lib/bio/torch KERAS_BACKEND=torch \
    NUMBA_CACHE_DIR=/tmp/numba
USER bio
WORKDIR /home/bio
EXPOSE 8000 9100
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["bio-fingerprint", "serve", "--host", "0.0.0.0", "--port", "8000"]
