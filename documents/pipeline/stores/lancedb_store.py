"""The embedded-default vector store: LanceDB on local disk.

One table per namespace. A query runs against one table, so a tenant's search cannot reach
another tenant's rows whatever the filter or the ANN index does (a shared table with a
namespace column would depend on every query remembering its ``where``, and a post-filtered
top-k can come back short). Different tenants also never contend for one table's commits.
Table names are derived from the namespace injectively: ``ns-<namespace>`` when it is made of
``[A-Za-z0-9_-]``, else ``nsx-<hex of its UTF-8>``.

Fork safety (docs/measurements.md, "LanceDB under fork"): once a process has opened *any*
LanceDB connection, its forked children crash (SIGSEGV) or hang inside LanceDB's native
runtime, even when they open fresh connections of their own. So the connection is opened lazily
in the process that uses it, and a process records that it did. A process that finds it was
forked from one that had connected (pid check) cannot use LanceDB in-process; its store sends
each call to a helper process it starts with the ``spawn`` method (a clean interpreter)
instead. Worker processes of a prefork pool whose parent never touched LanceDB (the normal
case) connect directly.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

import numpy as np

from documents.errors import FailureKind, PermanentError, TransientError
from documents.pipeline.types import DeleteCheck, Match, VectorRecord

# pid of the process that opened a LanceDB connection (inherited by fork, hence the check).
_native_pid: int | None = None

_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_DELETE_BATCH = 500  # ids per "id IN (...)" predicate, to keep the SQL text small
_UPSERT_BATCH = 5000
_CONFLICT_RETRIES = 6


def table_name(namespace: str) -> str:
    if _SAFE_NAME.fullmatch(namespace):
        return f"ns-{namespace}"
    return "nsx-" + namespace.encode("utf-8").hex()


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class LanceDBStore:
    """``VectorStore`` on a LanceDB directory (``uri``), vectors of ``dimension`` floats."""

    # read_consistency_interval=0: every read sees every commit, from any process.
    consistent = True

    def __init__(self, uri: str, dimension: int):
        self.uri = str(uri)
        self._dimension = int(dimension)
        self._lock = threading.Lock()
        self._backend: _Native | _Helper | None = None
        self._backend_pid: int | None = None

    def dimension(self) -> int | None:
        return self._dimension

    @property
    def runs_in_helper_process(self) -> bool:
        """True when this process inherited a used LanceDB through fork (see module doc)."""
        return isinstance(self._get_backend(), _Helper)

    def upsert(
        self,
        namespace: str,
        records: Sequence[VectorRecord],
        *,
        on_batch: Callable[[int, int | None], None] | None = None,
    ) -> None:
        rows = self._rows(records)
        for i in range(0, len(rows), _UPSERT_BATCH):
            self._call("upsert", namespace, *_columns(rows[i : i + _UPSERT_BATCH]))
            if on_batch is not None:
                on_batch(min(i + _UPSERT_BATCH, len(rows)), None)
        return None  # a read sees every committed write: there is no sequence to wait for

    def upsert_replacing(
        self,
        namespace: str,
        prefix: str,
        records: Sequence[VectorRecord],
        *,
        stale_ids: Sequence[str] = (),
        on_batch: Callable[[int, int | None], None] | None = None,
    ) -> None:
        """One merge_insert that also deletes the prefix's other rows: a single commit, so
        no reader sees the document half replaced, and faster than upsert, list, delete
        (docs/measurements.md, "LanceDB replace"). LanceDB's reads are consistent,
        so the prefix covers ``stale_ids`` and anything else a document left. Past one batch,
        upsert then delete the stale ids."""
        rows = self._rows(records)
        if len(rows) <= _UPSERT_BATCH:
            self._call("upsert", namespace, *_columns(rows), prefix)
            if on_batch is not None:
                on_batch(len(rows), None)
            return None
        self.upsert(namespace, rows, on_batch=on_batch)
        kept = {r.id for r in rows}
        stale = [i for i in stale_ids if i not in kept]
        stale += [i for i in self.list_ids(namespace, prefix) if i not in kept]
        if stale:
            self.delete_ids(namespace, stale)
        return None

    def _rows(self, records: Sequence[VectorRecord]) -> list[VectorRecord]:
        latest: dict[str, VectorRecord] = {}
        for record in records:
            self._check_dimension(len(record.values))
            latest[record.id] = record  # merge_insert refuses duplicate keys in one batch
        return list(latest.values())

    def list_ids(self, namespace: str, prefix: str) -> list[str]:
        return sorted(self._call("list_ids", namespace, prefix))

    def delete_ids(self, namespace: str, ids: Sequence[str]) -> None:
        ids = list(dict.fromkeys(ids))
        for i in range(0, len(ids), _DELETE_BATCH):
            self._call("delete_ids", namespace, ids[i : i + _DELETE_BATCH])

    def check_deleted(
        self, namespace: str, ids: Sequence[str], *, written_lsn: int | None
    ) -> DeleteCheck:
        # Every read sees every committed write: what is not found is gone.
        ids = list(dict.fromkeys(ids))
        present = 0
        for i in range(0, len(ids), _DELETE_BATCH):
            present += self._call("count_ids", namespace, ids[i : i + _DELETE_BATCH])
        return DeleteCheck(present=present, proven=True)

    def delete_namespace(self, namespace: str) -> None:
        self._call("drop_table", namespace)

    def query(self, namespace: str, vector: Sequence[float], top_k: int) -> list[Match]:
        self._check_dimension(len(vector))
        if top_k <= 0:
            return []
        rows = self._call("query", namespace, list(map(float, vector)), int(top_k))
        # cosine distance is 1 - cosine similarity; Match.score is "higher = closer"
        return [Match(id=i, score=1.0 - d, metadata=json.loads(m)) for i, d, m in rows]

    def close(self) -> None:
        with self._lock:
            if isinstance(self._backend, _Helper) and self._backend_pid == os.getpid():
                self._backend.close()
            self._backend = None

    def _check_dimension(self, got: int) -> None:
        if got != self._dimension:
            raise PermanentError(
                f"The embedding has {got} dimensions but the vector store holds "
                f"{self._dimension}-dimensional vectors.",
                kind=FailureKind.DIMENSION_MISMATCH,
            )

    def _get_backend(self) -> _Native | _Helper:
        with self._lock:
            pid = os.getpid()
            if self._backend is None or self._backend_pid != pid:
                # An inherited backend is dropped, not closed: closing it would run the
                # parent's native objects (or pipe) in this process.
                if _native_pid is not None and _native_pid != pid:
                    self._backend = _Helper(self.uri, self._dimension)
                else:
                    self._backend = _Native(self.uri, self._dimension)
                self._backend_pid = pid
            return self._backend

    def _call(self, method: str, *args):
        backend = self._get_backend()
        try:
            return backend.call(method, *args)
        except _HelperLost:
            with self._lock:
                self._backend = None  # start a new helper on the next call
            raise TransientError(
                "The vector store helper process stopped; the operation will be retried.",
                kind=FailureKind.UNAVAILABLE,
            ) from None


class _Native:
    """LanceDB used in this process."""

    def __init__(self, uri: str, dimension: int):
        global _native_pid
        import lancedb

        _native_pid = os.getpid()
        # interval 0 = check for other processes' commits on every read; the default never
        # re-reads, so list_ids would miss what another worker wrote.
        self._db = lancedb.connect(uri, read_consistency_interval=timedelta(0))
        self._dimension = dimension
        self._tables: dict[str, object] = {}

    def call(self, method: str, *args):
        return getattr(self, method)(*args)

    def _schema(self):
        import pyarrow as pa

        return pa.schema(
            [
                pa.field("id", pa.string(), nullable=False),
                pa.field("vector", pa.list_(pa.float32(), self._dimension)),
                pa.field("metadata", pa.string()),
            ]
        )

    def _table(self, namespace: str, *, create: bool):
        name = table_name(namespace)
        table = self._tables.get(name)
        if table is not None:
            return table
        try:
            table = self._db.open_table(name)
        except ValueError:  # "Table ... was not found"
            if not create:
                return None
            # exist_ok: another worker may create the same namespace at the same moment
            table = self._db.create_table(name, schema=self._schema(), exist_ok=True)
        size = table.schema.field("vector").type.list_size
        if size != self._dimension:
            raise PermanentError(
                f"Namespace {namespace!r} holds {size}-dimensional vectors but the store is "
                f"configured for {self._dimension}.",
                kind=FailureKind.DIMENSION_MISMATCH,
            )
        self._tables[name] = table
        return table

    def upsert(
        self,
        namespace: str,
        ids: list[str],
        vectors: np.ndarray,
        metadata: list[str],
        replacing_prefix: str | None = None,
    ):
        import pyarrow as pa

        table = self._table(namespace, create=True)
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), self._dimension)
        data = pa.table({"id": ids, "vector": vectors, "metadata": metadata}, schema=self._schema())

        def merge():
            builder = (
                table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all()
            )
            if replacing_prefix is not None:
                builder = builder.when_not_matched_by_source_delete(
                    f"starts_with(id, {_sql_string(replacing_prefix)})"
                )
            return builder.execute(data)

        _retry_conflicts(merge)

    def list_ids(self, namespace: str, prefix: str) -> list[str]:
        table = self._table(namespace, create=False)
        if table is None:
            return []
        query = table.search().select(["id"]).limit(None)
        if prefix:
            query = query.where(f"starts_with(id, {_sql_string(prefix)})")
        return query.to_arrow().column("id").to_pylist()

    def count_ids(self, namespace: str, ids: list[str]) -> int:
        table = self._table(namespace, create=False)
        if table is None or not ids:
            return 0
        return table.count_rows("id IN (" + ", ".join(_sql_string(i) for i in ids) + ")")

    def drop_table(self, namespace: str) -> None:
        name = table_name(namespace)
        self._tables.pop(name, None)
        self._db.drop_table(name, ignore_missing=True)

    def delete_ids(self, namespace: str, ids: list[str]) -> None:
        table = self._table(namespace, create=False)
        if table is None or not ids:
            return
        predicate = "id IN (" + ", ".join(_sql_string(i) for i in ids) + ")"
        _retry_conflicts(lambda: table.delete(predicate))

    def query(self, namespace: str, vector: list[float], top_k: int):
        table = self._table(namespace, create=False)
        if table is None:
            return []
        result = (
            table.search(vector, vector_column_name="vector")
            .distance_type("cosine")
            .limit(top_k)
            .select(["id", "metadata"])
            .to_arrow()
        )
        return list(
            zip(
                result.column("id").to_pylist(),
                result.column("_distance").to_pylist(),
                result.column("metadata").to_pylist(),
                strict=True,
            )
        )


def _columns(rows: Sequence[VectorRecord]) -> tuple[list[str], np.ndarray, list[str]]:
    return (
        [r.id for r in rows],
        # one float32 matrix: Arrow takes it without a Python float per value
        np.asarray([r.values for r in rows], dtype=np.float32),
        [json.dumps(r.metadata, ensure_ascii=False, sort_keys=True) for r in rows],
    )


def _retry_conflicts(operation):
    """Run a write, retrying LanceDB's commit conflicts. merge_insert already retries them
    internally for up to 30 s; delete and the rare "Too many concurrent writers" surface as a
    plain error whose message is the only way to recognise them."""
    for attempt in range(_CONFLICT_RETRIES):
        try:
            return operation()
        except Exception as exc:  # lancedb raises RuntimeError/OSError/ValueError variants
            message = str(exc).lower()
            if "commit conflict" not in message and "concurrent write" not in message:
                raise
            if attempt == _CONFLICT_RETRIES - 1:
                raise TransientError(
                    "The vector store was busy with other writers; the operation will be retried.",
                    kind=FailureKind.UNAVAILABLE,
                ) from exc
            time.sleep(0.05 * 2**attempt)


class _HelperLost(Exception):
    pass


class _Helper:
    """Runs ``_Native`` in a spawned process and forwards calls to it over a pipe."""

    def __init__(self, uri: str, dimension: int):
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        # daemon: ends with this process; and if this process is killed, the helper reads EOF
        self._process = ctx.Process(
            target=_serve, args=(child_conn, uri, dimension), daemon=True, name="lancedb-helper"
        )
        self._process.start()
        child_conn.close()
        self._lock = threading.Lock()

    def call(self, method: str, *args):
        with self._lock:
            try:
                self._conn.send((method, args))
                ok, value = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError) as exc:
                raise _HelperLost from exc
        if ok:
            return value
        raise value

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()


def _serve(conn, uri: str, dimension: int) -> None:
    native = _Native(uri, dimension)
    while True:
        try:
            method, args = conn.recv()
        except EOFError:
            return
        try:
            reply = (True, native.call(method, *args))
        except Exception as exc:
            reply = (False, exc)
        try:
            conn.send(reply)
        except Exception:  # an exception that does not pickle: send its text instead
            conn.send((False, RuntimeError(f"{type(reply[1]).__name__}: {reply[1]}")))
