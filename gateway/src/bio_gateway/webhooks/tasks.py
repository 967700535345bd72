"""Celery entry point of the webhook worker: ``bio-platform worker`` runs
``celery -A bio_gateway.webhooks.tasks worker -Q webhooks``."""

from bio_gateway.settings import GatewaySettings
from bio_gateway.webhooks.setup import build_hub

hub = build_hub(GatewaySettings())
app = hub.celery
