"""Helpers for model inference in any service: torch threads and device, timing into metrics.

Models are loaded once per process (API lifespan or first use in a worker) and cached; a worker
process runs one torch thread on CPU (two threads per process on a 2-core machine ran 5-10x slower
under load), and uses the GPU when one is present.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from bio_shared.metrics import INFERENCE


@lru_cache(maxsize=1)
def configure_torch(threads: int | None = None) -> str:
    """Set torch's thread counts once per process and return the device name ("cuda" or "cpu")."""
    import torch

    n = threads or int(os.environ.get("BIO_TORCH_THREADS", "1"))
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # already set once parallel work started in this process
        pass
    return "cuda" if torch.cuda.is_available() else "cpu"


@contextmanager
def timed_inference(service: str, model: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        INFERENCE.labels(service, model).observe(time.perf_counter() - start)
