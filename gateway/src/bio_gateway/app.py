"""create_app(settings) -> the gateway, with every service behind it.

Embedded mode (no ``BIO_GATEWAY_SERVICES``): the installed services are created in this process and
reached through an in-process ASGI transport. Distributed mode: the services are separate processes
reached over HTTP. Either way a request passes the same authentication, rate limit, identity
signing and proxy code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from bio_gateway import subjects as subjects_api
from bio_gateway.api import admin, auth, keys
from bio_gateway.audit import api as audit_api
from bio_gateway.audit.middleware import AuditMiddleware
from bio_gateway.audit.retention import start_retention
from bio_gateway.audit.store import AuditLog
from bio_gateway.console import install_console
from bio_gateway.docs import install_docs
from bio_gateway.headers import SecurityHeadersMiddleware
from bio_gateway.openapi import SchemaSource, install_openapi, remote_schema
from bio_gateway.proxy import ServiceProxy, Upstream, make_upstream
from bio_gateway.ratelimit import RateLimiter
from bio_gateway.routes import ROUTES
from bio_gateway.service import Accounts
from bio_gateway.settings import GatewaySettings
from bio_gateway.webhooks import api as webhooks_api
from bio_gateway.webhooks.observer import WebhookObserver
from bio_gateway.webhooks.poller import JobEventPoller
from bio_gateway.webhooks.setup import build_hub
from bio_shared.app import add_probes
from bio_shared.db import session_factory
from bio_shared.logging import RequestIdMiddleware, configure_logging
from bio_shared.services import ServiceSpec, discover_services
from bio_shared.web.errors import install_error_handlers
from bio_shared.web.metrics import MetricsMiddleware

log = logging.getLogger(__name__)

DESCRIPTION = """Self-hosted biometric identity platform.

Authenticate with **Authorize** (e-mail as username) or an `X-API-Key` header. Service APIs live under
`/api/v1/fingerprint`, `/api/v1/faces`, `/api/v1/verify` and `/api/v1/contours`. Errors are
`{"error": {"code", "message", "details"}}`; jobs answer 202 with a `status_url` to poll."""


def create_app(
    settings: GatewaySettings | None = None,
    *,
    services: dict[str, ServiceSpec] | None = None,
    service_overrides: dict[str, Any] | None = None,
) -> FastAPI:
    settings = settings or GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_json)
    accounts = Accounts(session_factory(settings.database_url), settings)
    audit = AuditLog(session_factory(settings.database_url), settings.audit_secret.encode())
    webhooks = build_hub(settings)
    limiter = RateLimiter(settings.rate_limit_uri)
    upstreams: list[Upstream] = []
    schemas: dict[str, SchemaSource] = {}
    embedded_apps: list[FastAPI] = []

    if settings.services:  # distributed
        for name, url in settings.services.items():
            if name not in ROUTES:
                raise ValueError(f"unknown service {name!r} in BIO_GATEWAY_SERVICES; known: {sorted(ROUTES)}")
            upstreams.append(make_upstream(name, ROUTES[name], settings, base_url=url.rstrip("/")))
            schemas[name] = remote_schema(f"{url.rstrip('/')}{ROUTES[name]}/openapi.json")
    else:  # embedded: every installed service in this process
        overrides = {"internal_secret": settings.internal_secret, **(service_overrides or {})}
        for name, spec in (discover_services() if services is None else services).items():
            service_app = spec.create_app(spec.settings(**overrides))
            embedded_apps.append(service_app)
            upstreams.append(make_upstream(name, spec.prefix, settings, app=service_app))
            schemas[name] = service_app.openapi

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for service_app in embedded_apps:  # run each mounted service's start-up (models, reaper)
                await stack.enter_async_context(service_app.router.lifespan_context(service_app))
            for upstream in upstreams:
                stack.push_async_callback(upstream.close)
            if settings.admin_email and settings.admin_password:
                account, created = accounts.ensure_admin(settings.admin_email, settings.admin_password)
                log.info("admin account %s %s", account.email, "created" if created else "ensured")
            stack.callback(start_retention(audit, settings))
            poller = asyncio.create_task(JobEventPoller(webhooks, upstreams, settings).run())
            stack.callback(poller.cancel)
            yield

    app = FastAPI(title="Biometric identity platform", version="0.1.0", description=DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    install_docs(app)
    install_console(app)  # the operator console at /console, a client of the public API
    app.state.settings = settings
    app.state.accounts = accounts
    app.state.limiter = limiter
    app.state.audit = audit
    app.state.webhooks = webhooks
    app.state.upstreams = {u.name: u for u in upstreams}
    install_error_handlers(app)
    add_probes(app, settings, "gateway")
    for router in (auth.router, keys.router, admin.router, audit_api.router, webhooks_api.router,
                   subjects_api.router):
        app.include_router(router)
    for upstream in upstreams:
        app.mount(upstream.prefix, ServiceProxy(upstream, accounts, limiter, settings), name=upstream.name)
    install_openapi(app, schemas, prefixes={u.name: u.prefix for u in upstreams})
    app.add_middleware(AuditMiddleware, audit=audit, observers=[WebhookObserver(webhooks)])
    app.add_middleware(MetricsMiddleware, service="gateway")
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=True,
                           allow_methods=["*"], allow_headers=["Authorization", "Content-Type", "X-API-Key",
                                                               "X-Request-ID"], expose_headers=["X-Request-ID"])
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.is_production)
    app.add_middleware(RequestIdMiddleware, service="gateway")
    return app
