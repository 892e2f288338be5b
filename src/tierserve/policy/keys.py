"""API keys: how a policy stores them and how a bearer key finds its tenant.

A policy names a tenant's keys in one of three ways: as salted hashes
(``api_key_hashes``, made by ``tierserve keys create``), from an environment variable
(``api_keys_env``, e.g. a mounted Kubernetes Secret), or in plain text (``api_keys``, for the
embedded demo). Keys made by the CLI carry 256 random bits, so one salted SHA-256 per stored
hash resists every offline attack a slow password hash would, and costs microseconds per
request rather than the tens of milliseconds of scrypt. Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

__all__ = ["KEY_HASH_PATTERN", "hash_key", "key_fingerprint", "key_matches", "new_key"]

KEY_HASH_PATTERN = r"^sha256\$[0-9a-f]{32}\$[0-9a-f]{64}$"
"""``sha256$<salt, 16 bytes hex>$<sha256(salt || key), hex>``."""

_KEY_HASH = re.compile(KEY_HASH_PATTERN)
_KEY_PREFIX = "sk-ts-"


def new_key() -> str:
    """A new bearer key: 256 random bits, URL-safe, with a prefix secret scanners can match."""
    return _KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.sha256(salt + key.encode("utf-8")).hexdigest()
    return f"sha256${salt.hex()}${digest}"


def key_matches(key: str, stored_hash: str) -> bool:
    if _KEY_HASH.match(stored_hash) is None:
        return False
    _, salt_hex, digest = stored_hash.split("$")
    candidate = hashlib.sha256(bytes.fromhex(salt_hex) + key.encode("utf-8")).hexdigest()
    return hmac.compare_digest(candidate, digest)


def key_fingerprint(key: str) -> str:
    """An unsalted SHA-256 prefix: the same key always maps to the same scope (its own cache
    and sessions), and no log or record holds anything a caller could present."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
