# syntax=docker/dockerfile:1.7
# Face recognition service: API and Celery worker share this image (they differ by command).
#   docker build -f deploy/docker/face-recognition.Dockerfile -t bio-face-recognition .                        # CPU
#   docker build -f deploy/docker/face-recognition.Dockerfile --build-arg VARIANT=cuda -t bio-face-recognition:cuda .
# CPU: torch from the PyTorch CPU index (it runs the dlib ResNet's weights), dlib from the dlib-bin
# wheel. CUDA: torch's default (CUDA) build and dlib compiled against CUDA + cuDNN. The code picks the
# GPU when one is visible.
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

# --- dlib: the dlib-bin wheel on CPU; compiled with CUDA for the GPU image ----------------------------
FROM ${PYTHON_IMAGE} AS dlib-cpu
RUN mkdir /wheels

FROM ${CUDA_IMAGE}-devel-${UBUNTU} AS dlib-cuda
COPY --from=python /usr/local /usr/local
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake libopenblas-dev liblapack-dev \
 && rm -rf /var/lib/apt/lists/* && ldconfig
RUN pip wheel --no-deps --no-binary dlib "dlib==20.0.0" -w /wheels \
 && pip install /wheels/dlib-*.whl \
 && python -c "import dlib, sys; sys.exit(0 if dlib.DLIB_USE_CUDA else 'dlib was built without CUDA')"

FROM dlib-${VARIANT} AS dlib

# --- dependencies (cached layer), then the source --------------------------------------------------
FROM base-${VARIANT} AS build
ARG VARIANT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY --from=dlib /wheels /wheels
COPY constraints.txt deploy/docker/requirements.py ./
COPY shared/pyproject.toml shared/pyproject.toml
COPY services/face-recognition/pyproject.toml services/face-recognition/pyproject.toml
RUN python requirements.py --variant ${VARIANT} shared services/face-recognition > requirements.txt \
 && pip install ${TORCH_INDEX:+--extra-index-url $TORCH_INDEX} -c constraints.txt -r requirements.txt "torch==2.13.0" \
 && if ls /wheels/*.whl >/dev/null 2>&1; then pip install --no-deps /wheels/*.whl; fi
COPY shared shared
COPY services/face-recognition services/face-recognition
RUN pip install --no-deps ./shared ./services/face-recognition

FROM base-${VARIANT}
RUN useradd --create-home --uid 10001 bio && mkdir -p /var/lib/bio && chown bio /var/lib/bio
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 BIO_VAR_DIR=/var/lib/bio BIO_ENV=production \
    BIO_TORCH_THREADS=1 OMP_NUM_THREADS=1 TORCH_HOME=/var/lib/bio/torch
USER bio
WORKDIR /home/bio
EXPOSE 8000 9100
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["bio-face-recognition", "serve", "--host", "0.0.0.0", "--port", "8000"]
