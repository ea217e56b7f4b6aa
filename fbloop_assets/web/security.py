"""The web app's secret and its CSRF tokens.

- The secret comes from ``$FBLOOP_SESSION_SECRET`` (at least 32 characters) or from
  ``<data>/secrets/session_secret`` (created once, mode 0600). It signs no cookie: sessions are
  rows of fbloop's database (`lib.labeling.accounts`); it is the key CSRF tokens are derived with.
- CSRF: a synchronizer token bound to the server-side session, HMAC-SHA256 of the session token's
  hash under the secret; before sign-in, bound the same way to a random visitor cookie. It is
  required on every state-changing request as the form field ``csrf_token`` or the header
  ``X-CSRF-Token`` and compared in constant time; signing in changes it, signing out ends it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from fbloop_assets.lib.common.lake import atomic_path

SECRET_ENV = "FBLOOP_SESSION_SECRET"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MIN_SECRET_CHARS = 32


def session_secret(data_dir: Path) -> str:
    """``$FBLOOP_SESSION_SECRET``, else the secret file under the data directory (made once, 0600)."""
    from_env = os.environ.get(SECRET_ENV, "").strip()
    if from_env:
        if len(from_env) < MIN_SECRET_CHARS:
            raise ValueError(f"{SECRET_ENV} must have at least {MIN_SECRET_CHARS} characters")
        return from_env
    path = data_dir / "secrets" / "session_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with atomic_path(path) as tmp:  # mkstemp creates the file with mode 0600
            tmp.write_text(secrets.token_urlsafe(48) + "\n", encoding="utf-8")
    os.chmod(path, 0o600)
    return path.read_text(encoding="utf-8").strip()


def csrf_for(secret: str, basis: str) -> str:
    """The CSRF token of a session (``basis``: its token's hash) or of a signed-out visitor's cookie."""
    return hmac.new(secret.encode(), b"csrf\0" + basis.encode(), hashlib.sha256).hexdigest()


def csrf_matches(expected: str, submitted: object) -> bool:
    if not isinstance(submitted, str) or not submitted:
        return False
    return secrets.compare_digest(expected.encode(), submitted.encode())
