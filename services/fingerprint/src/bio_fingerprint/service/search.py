"""Two-stage 1:N search of large galleries, shard by shard (engine/shards.py: MCC-LSH prefilter, then the
full matcher on the selected templates; the full match decides).

``search_shard`` is what one shard runs; its arguments and result are JSON (the probe as a minutiae list),
because in the distributed mode it runs in a shard worker (tasks.py, queue ``fingerprint-shard-I``), which
loads only its shard's templates. Embedded, and with one shard, the same function is called in-process.
``search`` fans the probe out over every shard and merges the candidate lists by score."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from bio_fingerprint.engine import orientation_field, shards
from bio_fingerprint.runtime import settings_of, state_of
from bio_fingerprint.service.gallery import lsh_positions, shard_gallery_of
from bio_shared.fanout import enable_results, fan_out
from bio_shared.runtime import ServiceRuntime

TASK = "bio_fingerprint.search_shard"


def shard_queue(index: int) -> str:
    return f"fingerprint-shard-{index}"


def distributed(rt: ServiceRuntime) -> bool:
    """Shards are searched by shard workers: Celery configured and more than one shard."""
    st = settings_of(rt)
    return st.shards > 1 and not st.jobs_in_process


def configure(rt: ServiceRuntime) -> None:
    """The fan-out collects the shard tasks' results: give the Celery app a result backend."""
    if not settings_of(rt).jobs_in_process and settings_of(rt).redis_url:
        enable_results(rt.celery, settings_of(rt).redis_url)


def search_shard(rt: ServiceRuntime, owner_id: str, index: int, count: int, minutiae: list[list[float]],
                 finger: int | None, top_k: int, penetration: float, field: list[int] | None = None
                 ) -> list[dict[str, Any]]:
    """The best ``top_k`` (subject, finger) candidates of shard ``index`` of ``count``, best first."""
    g = shard_gallery_of(state_of(rt).shards, rt.sessions, owner_id, index, count)
    if not len(g.shard):
        return []
    probe = shards.Probe.of(np.asarray(minutiae, np.float32).reshape(-1, 5), lsh_positions(),
                            orientation_field.validate(np.asarray(field or [], np.uint8)))
    hits = shards.search_shard(g.shard, probe, top_k=top_k, penetration=penetration, allowed=g.allowed(finger),
                               groups=g.groups)
    out = []
    for h in hits:
        e = g.by_id[str(h.template_id)]
        out.append({"score": h.score, "template_id": e.template_id, "subject": e.subject, "finger": e.finger})
    return out


def search(rt: ServiceRuntime, owner_id: str, minutiae: np.ndarray, finger: int | None, top_k: int,
           field: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Every shard's candidates, merged by score (ties by template id)."""
    st = settings_of(rt)
    probe = np.asarray(minutiae[:, :5], np.float32).tolist()  # as it travels to a shard worker
    cells = [] if field is None else np.asarray(field, np.uint8).tolist()
    calls = [(owner_id, i, st.shards, probe, finger, top_k, st.penetration, cells) for i in range(st.shards)]
    remote = distributed(rt)
    lists = fan_out(partial(search_shard, rt), calls, app=rt.celery if remote else None, task_name=TASK,
                    queue=[shard_queue(i) for i in range(st.shards)], timeout_s=st.shard_timeout_s)
    return sorted((h for lst in lists for h in lst), key=lambda h: (-h["score"], h["template_id"]))
