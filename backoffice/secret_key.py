"""Where ``SECRET_KEY`` comes from, and which keys are refused.

The key signs sessions, password-reset links and CSRF tokens: anyone who knows it can forge
them. So a key that has ever been published (a default in this repository, an example in its
docs) is refused outright, and with ``DEBUG`` off a key Django's own deploy check calls weak is
refused too. With no key set, the embedded defaults (``make run`` with nothing configured)
generate a random one once and keep it under ``var/``; a production deployment must set one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

# Every key this repository has ever shipped as a default or an example.
PUBLISHED_KEYS = frozenset(
    {
        "dev-only-insecure-key-change-me",  # the old default in backoffice/settings.py
        "change-me",  # .env.example
        "test-secret-key",  # the old test default in tests/envsetup.py
    }
)

KEY_FILE_NAME = "secret_key"

HOW_TO_GENERATE = (
    "Generate one with: python -c 'from django.core.management.utils import "
    "get_random_secret_key; print(get_random_secret_key())'"
)


def weakness(key: str) -> str | None:
    """Why Django's deploy check (security.W009) would call this key weak, or None."""
    if key.startswith(SECRET_KEY_INSECURE_PREFIX):
        return f"starts with {SECRET_KEY_INSECURE_PREFIX!r}, the mark of a generated dev key"
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"has {len(key)} characters; at least {SECRET_KEY_MIN_LENGTH} are needed"
    if len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        return f"has fewer than {SECRET_KEY_MIN_UNIQUE_CHARACTERS} different characters"
    return None


def check_key(key: str, *, name: str, debug: bool) -> str:
    """Return ``key`` if it may be used; raise ImproperlyConfigured naming ``name`` if not."""
    if key.strip() in PUBLISHED_KEYS:
        raise ImproperlyConfigured(
            f"{name} is a published value (it appears in this project's repository), so anyone "
            f"can forge sessions signed with it. {HOW_TO_GENERATE}"
        )
    problem = weakness(key)
    if problem and not debug:
        raise ImproperlyConfigured(
            f"{name} is too weak for DEBUG=false: it {problem}. {HOW_TO_GENERATE}"
        )
    return key


def resolve(*, configured: str, debug: bool, production: bool, var_dir: Path) -> str:
    """The key to use. ``configured`` is the environment's value ("" when unset)."""
    if configured:
        return check_key(configured, name="SECRET_KEY", debug=debug)
    if production and not debug:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. A deployment (DATABASE_URL or PRODUCTION=true) with "
            f"DEBUG=false needs its own secret key. {HOW_TO_GENERATE}"
        )
    return persisted_key(var_dir / KEY_FILE_NAME)


def persisted_key(path: Path) -> str:
    """Read the key kept at ``path``, creating it first if there is none.

    ``make run`` starts web, worker, beat and flower at once, and each reads the settings: the
    first to get here writes the key to a temporary file and links it into place, which fails
    if another process got there first, so every process ends up with the same key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(get_random_secret_key())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    key = path.read_text().strip()
    if weakness(key):
        raise ImproperlyConfigured(
            f"The generated secret key in {path} has been altered ({weakness(key)}); delete the "
            "file to have a new one generated, or set SECRET_KEY."
        )
    return key
