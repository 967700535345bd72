"""bio_shared.fanout: in-process, and as a Celery group through Redis to a real worker process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bio_shared.fanout import FanOutTimeout, fan_out

APP = textwrap.dedent("""
    import os
    from celery import Celery
    from bio_shared.fanout import enable_results, register_shard_task

    app = Celery("fanout_check", broker=os.environ["FANOUT_REDIS"], set_as_current=False)
    enable_results(app, os.environ["FANOUT_REDIS"])
    app.conf.update(task_serializer="json", accept_content=["json"])

    def shard_sum(shard, values):
        return [shard, sum(values), os.getpid()]

    register_shard_task(app, "fanout_check.shard_sum", shard_sum)
""")


def test_in_process_keeps_the_order():
    assert fan_out(lambda a, b: a - b, [(5, 1), (1, 5)]) == [4, -4]


@pytest.mark.integration
def test_celery_group_runs_on_a_worker_and_times_out_cleanly(tmp_path: Path, redis_url: str):
    (tmp_path / "fanout_check_app.py").write_text(APP)
    env = {**os.environ, "FANOUT_REDIS": redis_url,
           "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "fanout_check_app", "worker", "-Q", "shards",
                               "--pool", "solo", "--loglevel", "warning"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sys.path.insert(0, str(tmp_path))
    os.environ["FANOUT_REDIS"] = redis_url
    try:
        import fanout_check_app as m

        deadline = time.monotonic() + 60
        while True:  # the worker is up once it answers a ping
            if m.app.control.ping(timeout=0.5) or time.monotonic() > deadline:
                break
        got = fan_out(m.shard_sum, [(s, [s, 1, 2]) for s in range(3)], app=m.app,
                      task_name="fanout_check.shard_sum", queue="shards", timeout_s=30)
        assert [g[:2] for g in got] == [[0, 3], [1, 4], [2, 5]]
        assert all(g[2] == worker.pid for g in got)  # ran in the worker, not here
        with pytest.raises(FanOutTimeout) as exc:
            fan_out(m.shard_sum, [(0, [1])], app=m.app, task_name="fanout_check.shard_sum",
                    queue="nobody-listens", timeout_s=1)
        assert exc.value.status_code == 503 and exc.value.code == "fan_out_timeout"
    finally:
        worker.terminate()
        worker.wait(20)
        sys.path.remove(str(tmp_path))
        sys.modules.pop("fanout_check_app", None)
        os.environ.pop("FANOUT_REDIS", None)
