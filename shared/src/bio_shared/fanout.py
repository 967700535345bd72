"""Fan-out of one request over shard workers: a Celery group in the distributed mode, the same function
called in-process in the embedded mode.

The shard function must take JSON-serialisable arguments and return a JSON-serialisable value (it
travels through the broker). ``register_shard_task`` registers it on a service's Celery app as a task
that keeps its result (the platform's jobs ignore results; a fan-out must collect them), so the app
needs a result backend: ``enable_results(app, redis_url)``. Send shard tasks to a queue served by
other workers than the caller's (``queue=``) when the caller itself runs inside a worker, so a busy
pool cannot wait on itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bio_shared.errors import ServiceUnavailable


class FanOutTimeout(ServiceUnavailable):
    code = "fan_out_timeout"


class FanOutFailed(ServiceUnavailable):
    """The broker could not be reached, or a shard task failed: the caller gets 503, never a 500."""

    code = "fan_out_failed"


def enable_results(app: Any, backend_url: str, expires_s: int = 300) -> None:
    app.conf.update(result_backend=backend_url, result_expires=expires_s)


def register_shard_task(app: Any, name: str, fn: Callable[..., Any]) -> Any:
    return app.task(name=name, ignore_result=False, shared=False)(fn)


def fan_out(fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]], *, app: Any = None, task_name: str | None = None,
            queue: str | Sequence[str] | None = None, timeout_s: float = 30.0) -> list[Any]:
    """``[fn(*args) for args in calls]``, in this process (``app`` None) or as one Celery group.

    ``queue``: one queue for every call, or one per call (e.g. a queue per shard). A task not started
    within ``timeout_s`` expires, so a shard worker that comes back later does not run stale work."""
    if app is None:
        return [fn(*args) for args in calls]
    from celery import group
    from celery.exceptions import TimeoutError as CeleryTimeout
    from kombu.exceptions import OperationalError

    queues = [queue] * len(calls) if queue is None or isinstance(queue, str) else list(queue)
    if len(queues) != len(calls):
        raise ValueError("one queue per call")
    sigs = [app.signature(task_name, args=tuple(args), options={"expires": timeout_s, **({"queue": q} if q else {})})
            for args, q in zip(calls, queues, strict=True)]
    try:
        result = group(sigs).apply_async()
    except OperationalError as exc:
        raise FanOutFailed("the task broker cannot be reached", details={"shards": len(calls)}) from exc
    try:
        return list(result.get(timeout=timeout_s, disable_sync_subtasks=False))
    except CeleryTimeout as exc:
        result.revoke()
        raise FanOutTimeout(f"shard search did not finish within {timeout_s:g} s",
                            details={"shards": len(calls)}) from exc
    except OperationalError as exc:
        raise FanOutFailed("the result backend cannot be reached", details={"shards": len(calls)}) from exc
    except Exception as exc:  # a shard task raised: its error comes back through the result backend
        raise FanOutFailed(f"a shard search failed: {type(exc).__name__}: {exc}",
                           details={"shards": len(calls)}) from exc
