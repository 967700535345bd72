from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from bio_shared.settings import DEV_ENVS, CommonSettings, dev_secret


class GatewaySettings(CommonSettings):
    """Gateway settings (env prefix ``BIO_GATEWAY_``, falling back to ``BIO_``)."""

    model_config = SettingsConfigDict(env_prefix="BIO_GATEWAY_", extra="ignore")

    jwt_secret: str = ""
    jwt_issuer: str = "bio-gateway"
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 14 * 24 * 3600
    allow_registration: bool = True
    # Distributed mode: {"fingerprint": "http://127.0.0.1:8001", ...}. Empty -> every installed
    # service is mounted in this process (the embedded mode).
    services: dict[str, str] = Field(default_factory=dict)
    proxy_connect_timeout_s: float = 2.0
    proxy_read_timeout_s: float = 120.0
    proxy_max_connections: int = 200
    cors_origins: list[str] = Field(default_factory=list)
    rate_limit_api: str = "600/minute"  # per account, on every service call
    rate_limit_login: str = "10/minute"  # per client IP
    # per account (the e-mail tried), whatever the IP: a distributed guess of one password is bounded too
    rate_limit_login_account: str = "20/15 minutes"
    rate_limit_register: str = "5/minute"  # per client IP
    rate_limit_storage: str = ""  # empty -> redis_url if set, else memory://
    trust_forwarded_for: bool = False  # take the client IP from X-Forwarded-For (behind a trusted proxy)
    account_cache_ttl_s: float = 5.0  # how long a disabled account's token may still pass in another replica
    api_key_cache_ttl_s: float = 30.0
    admin_email: str = ""  # with admin_password: created (or promoted) at start-up
    admin_password: str = ""
    password_min_length: int = 8
    password_max_bytes: int = 1024
    audit_secret: str = ""  # HMAC key of the audit chain; kept outside the database it protects
    audit_retention_days: float = 0  # 0 keeps every entry; else a scheduled purge keeps the chain verifiable
    audit_purge_interval_s: float = 3600
    webhook_timeout_s: float = 5.0
    webhook_max_attempts: int = 6  # back-off 2, 4, 8, 16, 32 s between them
    webhook_disable_after: int = 5  # failed deliveries in a row before an endpoint is disabled
    webhook_poll_interval_s: float = 2.0  # how soon a finished job's event leaves
    webhook_allow_private: bool | None = None  # private/loopback URLs; default: allowed outside production

    @model_validator(mode="after")
    def _secrets(self) -> GatewaySettings:
        if not self.jwt_secret:
            if self.env not in DEV_ENVS:
                raise ValueError("BIO_GATEWAY_JWT_SECRET must be set outside development")
            self.jwt_secret = dev_secret(self.var_dir, "jwt")
        if not self.audit_secret:
            if self.env not in DEV_ENVS:
                raise ValueError("BIO_GATEWAY_AUDIT_SECRET must be set outside development")
            self.audit_secret = dev_secret(self.var_dir, "audit")
        if self.env not in DEV_ENVS and len(self.jwt_secret) < 32:
            raise ValueError("BIO_GATEWAY_JWT_SECRET must be at least 32 characters")
        return self

    @property
    def rate_limit_uri(self) -> str:
        return self.rate_limit_storage or self.redis_url or "memory://"
