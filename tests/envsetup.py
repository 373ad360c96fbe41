"""Loaded with ``-p tests.envsetup`` (pyproject addopts) before Django's settings are read.

Each pytest process (each xdist worker) gets its own ``var/`` folder and its own Celery queue,
so its files, LanceDB tables and task messages never mix with another's or with a developer's
running back-office. The worker processes the tests start inherit the same environment.
"""

import os
import tempfile

_node = os.environ.get("PYTEST_XDIST_WORKER", "main")
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix=f"backoffice-test-{_node}-"))
os.environ.setdefault("CELERY_TASK_DEFAULT_QUEUE", f"test-{_node}-{os.getpid()}")
os.environ.setdefault("TESTING_STATIC_PLAIN", "1")
os.environ.setdefault("SECRET_KEY", "test-secret-key")
