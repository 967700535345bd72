"""Password hashing with passlib.

``bcrypt_sha256`` first hashes the password with SHA-256 (HMAC-keyed in passlib's v2 format), so
passwords longer than bcrypt's 72-byte input limit are neither truncated (two long passwords with the
same first 72 bytes would otherwise collide) nor rejected. A hard upper bound stops hashing huge inputs.
bcrypt is pinned below 4.1 because passlib 1.7.4 fails on every hash with bcrypt >= 4.1.
"""

from __future__ import annotations

from passlib.context import CryptContext

from bio_gateway.exceptions import PasswordTooLong, WeakPassword

_context = CryptContext(schemes=["bcrypt_sha256"], deprecated="auto", bcrypt_sha256__rounds=12)
# A valid hash of a random password, verified when the account does not exist so that a login for
# an unknown e-mail takes as long as one with a wrong password (no account enumeration by timing).
_DUMMY_HASH = _context.hash("not-a-real-password-5d1c3f")


def check_policy(password: str, *, min_length: int, max_bytes: int) -> None:
    size = len(password.encode("utf-8"))
    if len(password) < min_length:
        raise WeakPassword(f"password must be at least {min_length} characters")
    if size > max_bytes:
        raise PasswordTooLong(f"password must be at most {max_bytes} bytes")


def hash_password(password: str) -> str:
    return _context.hash(password)


def verify_password(password: str, hashed: str | None) -> bool:
    if len(password.encode("utf-8")) > 4096:
        return False
    if hashed is None:
        _context.verify(password, _DUMMY_HASH)
        return False
    try:
        return _context.verify(password, hashed)
    except (ValueError, TypeError):
        return False


def set_rounds_for_tests(rounds: int) -> None:
    """bcrypt at 12 rounds costs ~0.25 s a hash; test suites lower it (never used in production)."""
    global _context, _DUMMY_HASH
    _context = CryptContext(schemes=["bcrypt_sha256"], deprecated="auto", bcrypt_sha256__rounds=rounds)
    _DUMMY_HASH = _context.hash("not-a-real-password-5d1c3f")
