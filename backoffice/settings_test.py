"""Settings for the test suite: production's settings, plus what only tests need.

``tests/envsetup.py`` gives each pytest process its own ``VAR_DIR`` and Celery queue before
these are read; the worker processes the tests start inherit ``DJANGO_SETTINGS_MODULE`` and
so read this file too.
"""

import os

from backoffice.settings import *  # noqa: F403
from backoffice.settings import BASE_DIR, DATABASES, STATIC_ROOT, STORAGES, VAR_DIR

ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

# PBKDF2's 1,000,000 iterations cost about a second per persona on these machines.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The tests never run collectstatic; the manifest-free storage serves files as they are.
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
# whitenoise warns on every request when the folder is missing.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so worker processes started by the tests share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}

# The int8 model file is built once per machine and named after the model files and library
# versions it came from, under a lock (onnx_model.py): every test process shares the project's
# var/models/ as a machine's workers share one folder, instead of exporting the model again in
# each process's own VAR_DIR before its first embedding.
if "LOCAL_EMBEDDING_CACHE_DIR" not in os.environ:
    LOCAL_EMBEDDING_CACHE_DIR = BASE_DIR / "var" / "models"

# Throttle counters in memory, per test process, so no run or xdist node sees another's.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# The suite sends hundreds of API requests from one address (schemathesis among them): the
# throttles are off here, and tests/documents/api/test_throttles.py switches them on.
API_THROTTLE_RATES = {scope: None for scope in API_THROTTLE_RATES}  # noqa: F405
