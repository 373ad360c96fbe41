"""Loaded with ``-p tests.envsetup`` (pyproject addopts) before Django's settings are read.

Each pytest process (each xdist worker) gets its own ``var/`` folder and its own Celery queue,
so its files, LanceDB tables and task messages never mix with another's or with a developer's
running back-office. The values are set, not defaulted: xdist workers inherit the controller's
environment, and must not inherit its folder and queue. Worker processes the tests start
inherit this process's values.
"""

import os
import tempfile

_node = os.environ.get("PYTEST_XDIST_WORKER", "main")
os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix=f"backoffice-test-{_node}-")
os.environ["CELERY_TASK_DEFAULT_QUEUE"] = f"test-{_node}-{os.getpid()}"
os.environ.setdefault("SECRET_KEY", "test-secret-key")
