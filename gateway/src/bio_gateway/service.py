"""Account use cases: registration, login, token rotation, API keys, administration. No FastAPI here."""

from __future__ import annotations

import builtins
import hmac
import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bio_gateway.exceptions import (
    AccountDisabled,
    AccountNotFound,
    ApiKeyNotFound,
    BadCredentials,
    EmailTaken,
    InvalidApiKey,
    InvalidRefreshToken,
    LoginDisabled,
    RefreshTokenExpired,
    RefreshTokenReused,
    SelfLockout,
    TokenRevoked,
    TooManyApiKeys,
)
from bio_gateway.models import Account, ApiKey, RefreshToken
from bio_gateway.security.passwords import check_policy, hash_password, verify_password
from bio_gateway.security.tokens import (
    api_key_prefix,
    create_access_token,
    decode_access_token,
    new_api_key,
    new_refresh_token,
    sha256_hex,
)
from bio_gateway.settings import GatewaySettings
from bio_shared.db import rowcount, session_scope, utcnow
from bio_shared.errors import BadRequest, Unauthorized
from bio_shared.jobs import new_id
from bio_shared.metrics import AUTH_FAILURES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    account_id: str
    role: str
    via: str  # "jwt" or "api_key"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


V = TypeVar("V")


class _TTLCache(Generic[V]):
    """Tiny thread-safe TTL cache for the hot authentication path."""

    def __init__(self, ttl_s: float, max_items: int = 10_000) -> None:
        self.ttl_s, self.max_items = ttl_s, max_items
        self._data: dict[str, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        item = self._data.get(key)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def put(self, key: str, value: V) -> None:
        with self._lock:
            if len(self._data) >= self.max_items:
                self._data.clear()
            self._data[key] = (time.monotonic() + self.ttl_s, value)

    def drop(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def normalise_email(email: str) -> str:
    return email.strip().lower()


class Accounts:
    def __init__(self, sessions: sessionmaker[Session], settings: GatewaySettings) -> None:
        self.sessions = sessions
        self.settings = settings
        # account_id -> (active, role, token generation)
        self._accounts: _TTLCache[tuple[bool, str, int]] = _TTLCache(settings.account_cache_ttl_s)
        self._keys: _TTLCache[Principal] = _TTLCache(settings.api_key_cache_ttl_s)  # key sha256 -> Principal

    # -- accounts ---------------------------------------------------------------------------------
    def register(self, email: str, password: str, role: str = "user") -> Account:
        s = self.settings
        check_policy(password, min_length=s.password_min_length, max_bytes=s.password_max_bytes)
        account = Account(id=new_id(), email=normalise_email(email), password_hash=hash_password(password),
                          role=role, is_active=True, created_at=utcnow())
        try:
            with session_scope(self.sessions) as db:
                db.add(account)
        except IntegrityError as exc:
            raise EmailTaken() from exc
        return account

    def ensure_admin(self, email: str, password: str | None) -> tuple[Account, bool]:
        """Create the admin account, or promote (and optionally re-password) an existing one."""
        with session_scope(self.sessions) as db:
            account = db.scalar(select(Account).where(Account.email == normalise_email(email)))
            if account is not None:
                account.role, account.is_active = "admin", True
                if password:
                    s = self.settings
                    check_policy(password, min_length=s.password_min_length, max_bytes=s.password_max_bytes)
                    account.password_hash = hash_password(password)
                self._accounts.drop(account.id)
                return account, False
        if not password:
            raise BadRequest("a password is required to create a new admin account")
        return self.register(email, password, role="admin"), True

    def login(self, email: str, password: str) -> TokenPair:
        with self.sessions() as db:
            account = db.scalar(select(Account).where(Account.email == normalise_email(email)))
        # verified even without an account, so an unknown email takes as long as a wrong password
        password_ok = verify_password(password, account.password_hash if account else None)
        if account is None or not password_ok:
            AUTH_FAILURES.labels("bad_credentials").inc()
            raise BadCredentials()
        if not account.is_active:
            AUTH_FAILURES.labels("account_disabled").inc()
            raise LoginDisabled()
        with session_scope(self.sessions) as db:
            db.execute(update(Account).where(Account.id == account.id).values(last_login_at=utcnow()))
            return self._issue(db, account, family_id=new_id())

    def _issue(self, db: Session, account: Account, family_id: str) -> TokenPair:
        s = self.settings
        access, _ = create_access_token(account.id, account.role, secret=s.jwt_secret, issuer=s.jwt_issuer,
                                        ttl_s=s.access_token_ttl_s, generation=account.token_generation or 0)
        refresh = new_refresh_token()
        db.add(RefreshToken(id=new_id(), account_id=account.id, family_id=family_id, token_hash=sha256_hex(refresh),
                            created_at=utcnow(), expires_at=utcnow() + timedelta(seconds=s.refresh_token_ttl_s)))
        return TokenPair(access, s.access_token_ttl_s, refresh, s.refresh_token_ttl_s)

    def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate: the presented token is spent and a new one of the same family is issued. A spent
        or revoked token presented again means it was stolen: the whole family is revoked."""
        now = utcnow()
        with session_scope(self.sessions) as db:
            row = db.scalar(select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(refresh_token)))
            if row is None:
                AUTH_FAILURES.labels("invalid_refresh").inc()
                raise InvalidRefreshToken()
            spent = rowcount(db.execute(
                update(RefreshToken)
                .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None))
                .values(used_at=now)
            ))
            if not spent:
                reused = row.revoked_at is None or row.used_at is not None
                self._revoke_family(db, row.family_id, now)
                if reused:
                    AUTH_FAILURES.labels("refresh_reuse").inc()
                    log.warning("refresh token reuse detected; family %s revoked", row.family_id)
                    db.commit()
                    raise RefreshTokenReused()
                raise InvalidRefreshToken("refresh token was revoked")
            if row.expires_at < now:
                raise RefreshTokenExpired()
            account = db.get(Account, row.account_id)
            if account is None or not account.is_active:
                self._revoke_family(db, row.family_id, now)
                db.commit()
                AUTH_FAILURES.labels("account_disabled").inc()
                raise AccountDisabled()
            return self._issue(db, account, family_id=row.family_id)

    def logout(self, refresh_token: str) -> None:
        with session_scope(self.sessions) as db:
            row = db.scalar(select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(refresh_token)))
            if row is not None:
                self._revoke_family(db, row.family_id, utcnow())

    @staticmethod
    def _revoke_family(db: Session, family_id: str, now) -> None:
        db.execute(update(RefreshToken).where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
                   .values(revoked_at=now))

    def get(self, account_id: str) -> Account:
        with self.sessions() as db:
            account = db.get(Account, account_id)
        if account is None:
            raise AccountNotFound()
        return account

    def list(self, limit: int, offset: int) -> tuple[list[Account], int]:
        with self.sessions() as db:
            total = db.scalar(select(func.count()).select_from(Account)) or 0
            rows = list(db.scalars(select(Account).order_by(Account.created_at).limit(limit).offset(offset)))
        return rows, total

    def update(self, account_id: str, *, is_active: bool | None, role: str | None, actor: str) -> Account:
        if account_id == actor and (is_active is False or role == "user"):
            raise SelfLockout("admins cannot disable or demote themselves")
        with session_scope(self.sessions) as db:
            account = db.get(Account, account_id)
            if account is None:
                raise AccountNotFound()
            if is_active is not None:
                account.is_active = is_active
                if not is_active:
                    self._revoke_all(db, account)
            if role is not None:
                account.role = role
        self._accounts.drop(account_id)
        self._keys.clear()
        return account

    @staticmethod
    def _revoke_all(db: Session, account: Account) -> None:
        """Everything that lets the account in: refresh tokens, API keys, and (through the token
        generation) every access token issued so far. Enabling the account again restores none."""
        now = utcnow()
        account.token_generation = (account.token_generation or 0) + 1
        db.execute(update(RefreshToken).where(RefreshToken.account_id == account.id,
                                              RefreshToken.revoked_at.is_(None)).values(revoked_at=now))
        db.execute(update(ApiKey).where(ApiKey.account_id == account.id, ApiKey.revoked_at.is_(None))
                   .values(revoked_at=now))

    def delete(self, account_id: str, *, actor: str) -> None:
        if account_id == actor:
            raise SelfLockout("admins cannot delete themselves")
        with session_scope(self.sessions) as db:
            account = db.get(Account, account_id)
            if account is None:
                raise AccountNotFound()
            db.delete(account)
        self._accounts.drop(account_id)
        self._keys.clear()

    # -- API keys ---------------------------------------------------------------------------------
    def create_api_key(self, account_id: str, name: str) -> tuple[ApiKey, str]:
        key, prefix = new_api_key()
        row = ApiKey(id=new_id(), account_id=account_id, name=name, prefix=prefix, key_hash=sha256_hex(key),
                     created_at=utcnow())
        with session_scope(self.sessions) as db:
            active = db.scalar(select(func.count()).select_from(ApiKey)
                               .where(ApiKey.account_id == account_id, ApiKey.revoked_at.is_(None))) or 0
            if active >= 50:
                raise TooManyApiKeys()
            db.add(row)
        return row, key

    def list_api_keys(self, account_id: str) -> builtins.list[ApiKey]:
        with self.sessions() as db:
            return list(db.scalars(select(ApiKey).where(ApiKey.account_id == account_id)
                                   .order_by(ApiKey.created_at)))

    def revoke_api_key(self, account_id: str, key_id: str) -> ApiKey:
        with session_scope(self.sessions) as db:
            row = db.get(ApiKey, key_id)
            if row is None or row.account_id != account_id:
                raise ApiKeyNotFound()
            if row.revoked_at is None:
                row.revoked_at = utcnow()
        self._keys.clear()
        return row

    # -- authentication of API calls (hot path) ----------------------------------------------------
    # With cached_only=True these raise LookupError instead of reading the database, so the async
    # proxy can answer cache hits inline and send misses to a thread.
    def principal_from_token(self, token: str, cached_only: bool = False) -> Principal:
        s = self.settings
        try:
            claims = decode_access_token(token, secret=s.jwt_secret, issuer=s.jwt_issuer)
        except Unauthorized as exc:
            AUTH_FAILURES.labels(exc.code).inc()
            raise
        role = self._active_role(claims.account_id, cached_only, generation=claims.generation)
        return Principal(claims.account_id, role, "jwt")

    def principal_from_api_key(self, key: str, cached_only: bool = False) -> Principal:
        digest = sha256_hex(key)
        cached = self._keys.get(digest)
        if isinstance(cached, Principal):
            return Principal(cached.account_id, self._active_role(cached.account_id, cached_only), "api_key")
        if cached_only:
            raise LookupError(digest)
        prefix = api_key_prefix(key)
        row = None
        if prefix:
            with self.sessions() as db:
                row = db.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
                if row is not None and row.revoked_at is None and hmac.compare_digest(row.key_hash, digest):
                    db.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=utcnow()))
                    db.commit()
                else:
                    row = None
        if row is None:
            AUTH_FAILURES.labels("invalid_api_key").inc()
            raise InvalidApiKey()
        principal = Principal(row.account_id, self._active_role(row.account_id), "api_key")
        self._keys.put(digest, principal)
        return principal

    def _active_role(self, account_id: str, cached_only: bool = False, generation: int | None = None) -> str:
        """The current role of an active account (cached for account_cache_ttl_s). ``generation``
        (of an access token) must be the account's current one."""
        cached = self._accounts.get(account_id)
        if cached is None:
            if cached_only:
                raise LookupError(account_id)
            with self.sessions() as db:
                account = db.get(Account, account_id)
            cached = (account.is_active, account.role, account.token_generation or 0) if account else (False, "user", 0)
            self._accounts.put(account_id, cached)
        active, role, current = cached
        if not active:
            AUTH_FAILURES.labels("account_disabled").inc()
            raise AccountDisabled()
        if generation is not None and generation != current:
            AUTH_FAILURES.labels("token_revoked").inc()
            raise TokenRevoked()
        return role
