"""The gateway's typed errors: one class per code, mapped to the shared error model; routes declare
the ones they can answer with (``error_responses(...)``)."""

from __future__ import annotations

from bio_shared.errors import BadRequest, Conflict, Forbidden, NotFound, ServiceUnavailable, Unauthorized, Unprocessable


class NotAuthenticated(Unauthorized):
    code, message = "not_authenticated", "send a Bearer access token or an X-API-Key header"


class InvalidToken(Unauthorized):
    code, message = "invalid_token", "invalid access token"


class TokenExpired(Unauthorized):
    code, message = "token_expired", "access token has expired"


class TokenRevoked(Unauthorized):
    code, message = "token_revoked", "access token was revoked; log in again"


class InvalidApiKey(Unauthorized):
    code, message = "invalid_api_key", "invalid API key"


class AccountDisabled(Unauthorized):
    code, message = "account_disabled", "account is disabled or deleted"


class BadCredentials(Unauthorized):
    code, message = "bad_credentials", "incorrect e-mail or password"


class InvalidRefreshToken(Unauthorized):
    code, message = "invalid_refresh_token", "invalid refresh token"


class RefreshTokenReused(Unauthorized):
    code, message = "refresh_token_reused", "refresh token was already used; all sessions of this login are revoked"


class RefreshTokenExpired(Unauthorized):
    code, message = "refresh_token_expired", "refresh token has expired"


class LoginDisabled(Forbidden):
    """At login: the password was right but the account is disabled."""

    code, message = "account_disabled", "this account is disabled"


class RegistrationDisabled(Forbidden):
    code, message = "registration_disabled", "registration is disabled on this platform; ask an administrator"


class AdminRequired(Forbidden):
    code, message = "admin_required", "admin role required"


class PasswordLoginRequired(Forbidden):
    code, message = "password_login_required", "API keys are created from a password login, not with another API key"


class EmailTaken(Conflict):
    code, message = "email_taken", "an account with this e-mail already exists"


class TooManyApiKeys(Conflict):
    code, message = "too_many_api_keys", "an account can hold at most 50 active API keys"


class AccountNotFound(NotFound):
    code, message = "account_not_found", "account not found"


class ApiKeyNotFound(NotFound):
    code, message = "api_key_not_found", "API key not found"


class SelfLockout(BadRequest):
    code, message = "self_lockout", "admins cannot disable, demote or delete themselves"


class WeakPassword(Unprocessable):
    code, message = "weak_password", "the password is too short"


class PasswordTooLong(Unprocessable):
    code, message = "password_too_long", "the password is too long"


class PurgeIncomplete(ServiceUnavailable):
    code, message = ("purge_incomplete", "the account is disabled but some services could not delete its data yet; "
                     "repeat the request")
