"""LanceDBStore on a real LanceDB directory, including four forked writers at once."""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest

from documents.errors import FailureKind, PermanentError
from documents.pipeline.stores.lancedb_store import LanceDBStore, table_name
from documents.pipeline.types import VectorRecord

DIM = 8


def vec(seed: int, dim: int = DIM) -> list[float]:
    v = np.random.default_rng(seed).normal(size=dim)
    return (v / np.linalg.norm(v)).tolist()


@pytest.fixture
def store(tmp_path):
    s = LanceDBStore(str(tmp_path / "vectors"), DIM)
    yield s
    s.close()


def test_upsert_replaces_by_id_and_lists_by_prefix(store):
    store.upsert("t1", [VectorRecord(f"doc1#{i}", vec(i), {"i": i}) for i in range(30)])
    store.upsert("t1", [VectorRecord("doc10#0", vec(99)), VectorRecord("doc1#0", vec(5), {"v": 2})])
    assert store.list_ids("t1", "doc1#") == sorted(f"doc1#{i}" for i in range(30))
    assert len(store.list_ids("t1", "")) == 31
    (best,) = store.query("t1", vec(5), top_k=1)
    assert best.score == pytest.approx(1.0, abs=1e-5)
    assert best.id in {"doc1#0", "doc1#5"} and best.metadata in ({"v": 2}, {"i": 5})


@pytest.mark.parametrize("batch", [5000, 3], ids=["one-commit", "over-one-batch"])
def test_upsert_replacing_leaves_only_the_new_records_under_the_prefix(store, monkeypatch, batch):
    # Past one batch the store upserts, then deletes the stale ids and the prefix's others.
    monkeypatch.setattr("documents.pipeline.stores.lancedb_store._UPSERT_BATCH", batch)
    for doc, n in (("a", 10), ("ab", 5), ("b", 7)):
        store.upsert("t1", [VectorRecord(f"{doc}#{i}", vec(i), {"v": 1}) for i in range(n)])
    store.upsert("t2", [VectorRecord(f"a#{i}", vec(i)) for i in range(10)])

    new = [VectorRecord(f"a#{i}", vec(100 + i), {"v": 2}) for i in range(4)]
    store.upsert_replacing("t1", "a#", new)

    assert store.list_ids("t1", "a#") == [f"a#{i}" for i in range(4)]
    assert len(store.list_ids("t1", "ab#")) == 5 and len(store.list_ids("t1", "b#")) == 7
    assert len(store.list_ids("t2", "a#")) == 10  # another namespace is not touched
    (best,) = store.query("t1", vec(102), top_k=1)
    assert (best.id, best.metadata) == ("a#2", {"v": 2})
    store.upsert_replacing("t1", "it's#", [VectorRecord("it's#0", vec(1))])  # quoted in SQL
    assert store.list_ids("t1", "it's#") == ["it's#0"]


def test_delete_by_ids_leaves_the_others(store):
    store.upsert("t1", [VectorRecord(f"d#{i}", vec(i)) for i in range(10)])
    store.delete_ids("t1", ["d#1", "d#3", "missing", "it's quoted"])
    assert store.list_ids("t1", "d#") == [f"d#{i}" for i in (0, 2, 4, 5, 6, 7, 8, 9)]
    store.delete_ids("never-written", ["x"])  # a namespace that does not exist yet


def test_a_delete_shows_at_once_and_is_proven_without_a_sequence_number(store):
    store.upsert("t1", [VectorRecord(f"d#{i}", vec(i)) for i in range(3)])
    check = store.check_deleted("t1", ["d#0", "d#1", "elsewhere"], written_lsn=None)
    assert (check.present, check.proven, check.confirmed) == (2, True, False)
    store.delete_ids("t1", ["d#0", "d#1"])
    assert store.check_deleted("t1", ["d#0", "d#1"], written_lsn=None).confirmed
    assert store.check_deleted("never-written", ["x"], written_lsn=None).confirmed


def test_a_namespace_is_dropped_and_a_missing_one_is_no_error(store):
    store.upsert("t1", [VectorRecord("d#0", vec(0))])
    store.delete_namespace("t1")
    store.delete_namespace("never-written")
    assert store.list_ids("t1", "") == []
    store.upsert("t1", [VectorRecord("d#1", vec(1))])  # the namespace can come back
    assert store.list_ids("t1", "") == ["d#1"]


def test_query_ranks_by_cosine_similarity(store):
    target = np.array(vec(1))
    other = np.array(vec(2))
    records = [
        VectorRecord("same", (target * 3).tolist()),  # same direction, longer: cosine 1
        VectorRecord("near", (target + 0.3 * other).tolist()),
        VectorRecord("opposite", (-target).tolist()),
    ]
    store.upsert("t1", records)
    matches = store.query("t1", target.tolist(), top_k=3)
    assert [m.id for m in matches] == ["same", "near", "opposite"]
    assert matches[0].score == pytest.approx(1.0, abs=1e-5)
    assert matches[2].score == pytest.approx(-1.0, abs=1e-5)
    assert store.query("empty-namespace", target.tolist(), top_k=3) == []


def test_namespaces_are_hard_separated(store):
    store.upsert("tenant-a", [VectorRecord("doc#0", vec(1), {"t": "a"})])
    store.upsert("tenant-b", [VectorRecord("doc#0", vec(1), {"t": "b"})])
    store.upsert("tenant-b", [VectorRecord(f"b#{i}", vec(i)) for i in range(20)])
    assert [m.metadata for m in store.query("tenant-a", vec(1), top_k=50)] == [{"t": "a"}]
    assert store.list_ids("tenant-a", "") == ["doc#0"]
    store.delete_ids("tenant-a", ["doc#0"])
    assert store.list_ids("tenant-b", "doc") == ["doc#0"]
    # names that a naive sanitiser would map onto each other stay apart
    assert len({table_name(n) for n in ["a.b", "a_b", "a-b", "x-61", "", "ünï"]}) == 6


def test_a_vector_of_another_length_is_a_dimension_mismatch(store):
    with pytest.raises(PermanentError) as err:
        store.upsert("t1", [VectorRecord("a", vec(1, dim=384))])
    assert err.value.kind == FailureKind.DIMENSION_MISMATCH
    assert "384" in str(err.value) and str(DIM) in str(err.value)
    assert store.dimension() == DIM


def test_a_table_of_another_dimension_is_refused(tmp_path):
    LanceDBStore(str(tmp_path), 4).upsert("t1", [VectorRecord("a", [1.0, 0, 0, 0])])
    with pytest.raises(PermanentError) as err:
        LanceDBStore(str(tmp_path), DIM).list_ids("t1", "")
    assert err.value.kind == FailureKind.DIMENSION_MISMATCH
    assert "4" in str(err.value) and str(DIM) in str(err.value)


# -- four forked writers ----------------------------------------------------------------------

WORKERS, DOCS, CHUNKS, KEPT = 4, 5, 24, 15


def _writer(store: LanceDBStore, worker: int, expect_helper: bool) -> None:
    """What a prefork worker does: process documents, reprocess them with fewer chunks (upsert
    replacing the document's ids), purge one."""
    assert store.runs_in_helper_process is expect_helper
    for d in range(DOCS):
        doc = f"w{worker}-doc{d}"
        for ns in ("shared", f"own-{worker}"):
            store.upsert(
                ns, [VectorRecord(f"{doc}#{i}", vec(i), {"doc": doc}) for i in range(CHUNKS)]
            )
    for d in range(DOCS):
        doc = f"w{worker}-doc{d}"
        store.upsert_replacing(
            "shared",
            f"{doc}#",
            [VectorRecord(f"{doc}#{i}", vec(1000 + i), {"v": 2}) for i in range(KEPT)],
        )
    purged = f"w{worker}-doc0"
    store.delete_ids("shared", store.list_ids("shared", f"{purged}#"))


def _scenario(uri: str, parent_touches_store: bool) -> None:
    """Runs in a fresh interpreter, so the parent below has used LanceDB only if asked to."""
    store = LanceDBStore(uri, DIM)
    if parent_touches_store:
        store.upsert("shared", [VectorRecord("parent#0", vec(0))])
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_writer, args=(store, w, parent_touches_store)) for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    codes = [p.exitcode for p in procs]
    assert codes == [0] * WORKERS, f"writer exit codes {codes} (negative = killed by signal)"

    check = LanceDBStore(uri, DIM)
    expected = {
        f"w{w}-doc{d}#{i}" for w in range(WORKERS) for d in range(1, DOCS) for i in range(KEPT)
    }
    if parent_touches_store:
        expected.add("parent#0")
    assert set(check.list_ids("shared", "")) == expected
    assert len(check.list_ids("shared", "")) == len(expected)  # no duplicate rows
    for w in range(WORKERS):
        own = {f"w{w}-doc{d}#{i}" for d in range(DOCS) for i in range(CHUNKS)}
        assert set(check.list_ids(f"own-{w}", "")) == own
    hit = check.query("own-1", vec(3), top_k=1)[0]
    assert hit.id.startswith("w1-") and hit.metadata["doc"].startswith("w1-")
    check.close()
    store.close()


@pytest.mark.parametrize("parent_touches_store", [False, True], ids=["clean-parent", "used"])
def test_four_forked_workers_write_at_once_and_lose_nothing(tmp_path, parent_touches_store):
    # The scenario runs in a spawned interpreter: the pytest process has used LanceDB in the
    # tests above, and a process that has must not fork LanceDB users (see the store's doc).
    ctx = multiprocessing.get_context("spawn")
    runner = ctx.Process(target=_scenario, args=(str(tmp_path / "v"), parent_touches_store))
    runner.start()
    runner.join(timeout=600)
    if runner.is_alive():
        os.kill(runner.pid, 9)
    assert runner.exitcode == 0
