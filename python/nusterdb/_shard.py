"""One shard of a sharded collection: a Dask actor that holds one ``NusterDB`` handle.

The actor lives on one worker for as long as the collection is open, so that the file
stays mapped and its pages cached there; ``nusterdb.distributed`` routes records to it
and merges what it returns. Everything it returns pickles (vectors, metadata, numpy
arrays, plain dicts for statistics), since it crosses the network.

Arguments that are Dask futures (a chunk of a ``dask.array``, or the rows of one
chunk that belong here) are fetched by the actor from the worker that holds them, so
that a chunk never passes through the client.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import numpy as np

from ._core import DatabaseConfig, NusterDB


def _resolve(x: Any) -> Any:
    # A distributed.Future unpickled on a worker binds to the worker's client.
    if type(x).__name__ == "Future" and hasattr(x, "result"):
        x = x.result()
    return _aligned(x)


def _aligned(x: Any) -> Any:
    """An array as the extension may read it in place. Dask hands over arrays that are
    views into its message buffers, at any byte offset; the extension reads a float32
    buffer without checking its alignment (UBSan: "load of misaligned address" in
    nvf__coll_check_vector), so a misaligned one is copied here."""
    if isinstance(x, np.ndarray) and not (x.flags.aligned and x.flags.c_contiguous):
        return np.require(x, requirements=["C", "A"])
    return x


class Shard:
    """The actor: ``Shard(path, shard, shards, ...)`` opens (or creates) the shard's file."""

    def __init__(self, path: str, shard: int, shards: int, *, config: dict[str, Any] | None = None,
                 create: bool = False, snapshot: str | None = None, read_only: bool = False,
                 timeout: float | None = 5.0) -> None:
        self.shard = shard
        self.shards = shards
        if create:
            if config is None:
                raise ValueError("creating a shard needs a config")
            if os.path.exists(path):
                raise FileExistsError(f"shard {shard}: {path} exists")
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self.db = NusterDB(path, DatabaseConfig(**config), timeout=timeout)
        else:
            # open() never creates: a worker that cannot reach the file says so
            # (FileNotFoundError) and the client tries another.
            self.db = NusterDB.open(path, snapshot=snapshot, read_only=read_only, timeout=timeout)

    # -- where the actor runs (failure handling, tests) --------------------------------
    def where(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": socket.gethostname(), "path": self.db.path}

    def close(self) -> None:
        self.db.close()

    # -- records -----------------------------------------------------------------------
    def add(self, id: int, vector: Any, metadata: Any = None) -> None:
        self.db.add(id, _aligned(vector), metadata)

    def upsert(self, id: int, vector: Any, metadata: Any = None) -> None:
        self.db.upsert(id, _aligned(vector), metadata)

    def add_items(self, X: Any, ids: Any, metadata: Any = None, threads: int = 0) -> int:
        X = _resolve(X)
        ids = _resolve(ids)
        if len(ids) == 0:
            return 0
        self.db.add_items(X, ids=ids, metadata=metadata, threads=threads)
        return len(ids)

    def get(self, id: int) -> Any:
        return self.db.get(id)

    def get_metadata(self, id: int) -> Any:
        return self.db.get_metadata(id)

    def contains(self, id: int) -> bool:
        return id in self.db

    def update(self, id: int, vector: Any) -> None:
        self.db.update(id, _aligned(vector))

    def update_metadata(self, id: int, metadata: Any) -> None:
        self.db.update_metadata(id, metadata)

    def delete(self, id: int) -> bool:
        return self.db.delete(id)

    def count(self) -> int:
        return self.db.count()

    # -- search ------------------------------------------------------------------------
    def search(self, query: Any, k: int, ef_search: int | None, filter: str | None) -> list[tuple[int, float]]:
        return self.db.search(_aligned(query), k=k, ef_search=ef_search, filter=filter)

    def range_search(self, query: Any, radius: float, filter: str | None) -> list[tuple[int, float]]:
        return self.db.range_search(_aligned(query), radius, filter=filter)

    def knn(self, Q: Any, k: int, ef: int | None, filter: str | None,
            threads: int) -> tuple[np.ndarray, np.ndarray, float]:
        """The shard's full top-k of every query, and the seconds the search took here
        (so that the client can tell its own overhead from the shards' work)."""
        Q = _resolve(Q)
        t0 = time.perf_counter()
        ids, dist = self.db.knn(Q, k=k, ef=ef, filter=filter, threads=threads)
        return np.asarray(ids), np.asarray(dist), time.perf_counter() - t0

    # -- snapshots and maintenance -----------------------------------------------------
    def snapshot(self, name: str, doc: dict[str, Any]) -> dict[str, Any]:
        self.db.snapshot(name, doc)
        for s in self.db.snapshots():
            if s["name"] == name:
                return {"txnid": s["txnid"], "records": s["records"], "created_at_us": s["created_at_us"]}
        raise RuntimeError(f"shard {self.shard}: snapshot {name!r} vanished after it was made")

    def _listing(self) -> list[dict[str, Any]]:
        if self.db.snapshot_name is None:
            return self.db.snapshots()
        # A handle opened at a snapshot fails to list the file's snapshots
        # (CorruptError "page N: written by transaction T, state is S": it reads the
        # SNAPSHOTS tree at the snapshot's own state); a plain read-only handle can.
        with NusterDB.open(self.db.path, read_only=True) as h:
            return h.snapshots()

    def snapshot_names(self) -> list[str]:
        return [s["name"] for s in self._listing()]

    def snapshot_doc(self, name: str) -> dict[str, Any] | None:
        for s in self._listing():
            if s["name"] == name:
                return s["metadata"]
        return None

    def delete_snapshot(self, name: str) -> bool:
        if name not in self.snapshot_names():
            return False
        self.db.delete_snapshot(name)
        return True

    def stats(self, detailed: bool) -> dict[str, Any]:
        return self.db.stats(detailed).to_dict()

    def config(self) -> dict[str, Any]:
        return self.db.config.to_dict()

    def compact(self) -> None:
        self.db.compact()

    def sync(self) -> None:
        self.db.sync()
