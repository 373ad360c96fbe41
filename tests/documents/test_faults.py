"""Faults with real processes (PostgreSQL, a Redis of its own, worker and beat processes, the
Gemini and Pinecone doubles). Each run of 50 or more documents must end with every document
``completed``, exactly one vector per chunk, nothing ``processing``, and every failed attempt
recorded -- whatever was killed, emptied or refused on the way."""

from __future__ import annotations

import time

import pytest

from tests.conftest import _worker_env
from tests.fault_rig import FaultRig, make_text_files

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

DOCUMENTS = 50


@pytest.fixture
def rig(personas, tmp_path, django_db_blocker):
    database_env = {"DATABASE_URL": _worker_env()["DATABASE_URL"]}
    rig = FaultRig(database_env=database_env, folder=tmp_path).start()
    yield rig
    rig.stop()


def test_worker_processes_killed_with_sigkill_lose_nothing(rig, personas, tmp_path):
    # Slow answers keep documents in flight long enough to be killed mid-task.
    rig.gemini.set_delay(0.3)
    rig.ingest(make_text_files(tmp_path / "docs", DOCUMENTS), personas.tenant_a.slug)
    kills = 0
    for _ in range(5):
        time.sleep(2.0)
        kills += rig.kill_a_worker_child()
    assert kills >= 3
    rig.gemini.set_delay(0)
    documents = rig.wait_until_settled(personas.tenant_a, expected=DOCUMENTS)
    rig.assert_nothing_lost(personas.tenant_a, documents)
    assert any(e["kind"] == "worker_lost" for d in documents for e in d.attempt_log)


def test_redis_emptied_and_restarted_mid_run_loses_nothing(rig, personas, tmp_path):
    rig.gemini.set_delay(0.2)
    rig.ingest(make_text_files(tmp_path / "docs", DOCUMENTS), personas.tenant_a.slug)
    time.sleep(2.0)
    assert rig.redis.cli("flushall") == "OK"
    rig.redis.stop()
    time.sleep(1.0)
    rig.redis.start()
    rig.gemini.set_delay(0)
    documents = rig.wait_until_settled(personas.tenant_a, expected=DOCUMENTS)
    rig.assert_nothing_lost(personas.tenant_a, documents)


def test_gemini_answering_30_percent_429_or_503_loses_nothing(rig, personas, tmp_path):
    rig.gemini.set_fault_rate(0.3, (429, 503), seed=7, retry_delay="1s")
    rig.ingest(make_text_files(tmp_path / "docs", DOCUMENTS), personas.tenant_a.slug)
    documents = rig.wait_until_settled(personas.tenant_a, expected=DOCUMENTS)
    rig.gemini.clear_faults()
    rig.assert_nothing_lost(personas.tenant_a, documents)
    kinds = {e["kind"] for d in documents for e in d.attempt_log}
    assert kinds & {"rate_limited", "unavailable"}


def test_pinecone_answering_30_percent_429_or_5xx_loses_nothing(rig, personas, tmp_path):
    rig.pinecone.set_fault_rate(0.3, (429, 500, 503), seed=11)
    rig.ingest(make_text_files(tmp_path / "docs", DOCUMENTS), personas.tenant_a.slug)
    documents = rig.wait_until_settled(personas.tenant_a, expected=DOCUMENTS)
    rig.pinecone.clear_faults()
    rig.assert_nothing_lost(personas.tenant_a, documents)
