"""Loaded with ``-p tests.envsetup`` (pyproject addopts) before Django's settings are read.

Each pytest process (each xdist worker) gets its own ``var/`` folder and its own Celery queue,
so its files, LanceDB tables and task messages never mix with another's or with a developer's
running back-office. The values are set, not defaulted: xdist workers inherit the controller's
environment, and must not inherit its folder and queue. Worker processes the tests start
inherit this process's values.
"""

import os
import secrets
import tempfile

_node = os.environ.get("PYTEST_XDIST_WORKER", "main")
os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix=f"backoffice-test-{_node}-")
os.environ["CELERY_TASK_DEFAULT_QUEUE"] = f"test-{_node}-{os.getpid()}"
# A fresh random key per run: settings refuse published keys, and with DEBUG off a weak one.
# Set, not defaulted, so a developer's own SECRET_KEY never decides whether the tests start.
# The worker processes the tests start inherit it.
os.environ["SECRET_KEY"] = secrets.token_urlsafe(50)
