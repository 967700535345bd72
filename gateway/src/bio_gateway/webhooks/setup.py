"""Builds the hub with its job queue: Celery on the ``webhooks`` queue when a broker is configured
(`bio-platform worker` consumes it), in-process threads otherwise."""

from __future__ import annotations

from bio_gateway.settings import GatewaySettings
from bio_gateway.webhooks.hub import WebhookHub
from bio_gateway.webhooks.models import WebhookJob
from bio_shared.celery_app import install_worker_hooks, make_celery, register_job_task
from bio_shared.db import session_factory
from bio_shared.jobs import CeleryDispatcher, JobQueue, ThreadDispatcher
from bio_shared.sealed import envelope_for

QUEUE = "webhooks"


def build_hub(settings: GatewaySettings) -> WebhookHub:
    envelope_for(settings)  # endpoint secrets are sealed at rest
    sessions = session_factory(settings.database_url)
    # One attempt per job run: the queue's retry budget is the webhook's.
    queue_settings = settings.model_copy(update={"job_max_attempts": settings.webhook_max_attempts,
                                                 "job_time_limit_s": int(settings.webhook_timeout_s) + 30})
    queue = JobQueue(QUEUE, WebhookJob, sessions, queue_settings, status_path="/api/v1/webhooks/jobs")
    hub = WebhookHub(sessions, settings, queue)
    hub.celery = make_celery(QUEUE, queue_settings)
    task = register_job_task(hub.celery, queue)
    if settings.jobs_in_process:
        queue.dispatcher = ThreadDispatcher(queue, 2)
    else:
        queue.dispatcher = CeleryDispatcher(task, QUEUE)
        install_worker_hooks(hub.celery, queue, log_level=settings.log_level)
    return hub
