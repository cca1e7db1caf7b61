"""nusterdb.distributed: one collection sharded over Dask ``distributed`` workers.

Each shard is an ordinary ``.nvf`` file held open by a long-lived actor
(``nusterdb._shard.Shard``) on one worker; ``ShardedNusterDB`` has the methods of
``NusterDB``, routes each record to ``splitmix64(id) % S`` and merges what the shards
return by (distance, id). docs/DISTRIBUTED.md is the user's guide: set-up on one and
on several machines, consistency (a batch spanning shards is not atomic across them),
failure behaviour.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Sequence, Tuple, Union

import numpy as np
from distributed import Client, Future
from distributed.comm.core import CommClosedError

from . import _manifest
from ._core import DatabaseConfig, Error, ExistsError, Metadata, NotFoundError, Vector
from ._manifest import ManifestError
from ._shard import Shard

__all__ = [
    "ShardedNusterDB",
    "ShardedStats",
    "ShardError",
    "ShardUnavailableError",
    "ShardWriteError",
    "ManifestError",
    "splitmix64",
    "shard_of",
    "route",
]

# -- routing ---------------------------------------------------------------------------
# splitmix64's finaliser (Steele, Lea, Flood 2014; the constants of Java's
# SplittableRandom): a fixed bijection of 64-bit integers whose low bits depend on every
# input bit, so consecutive ids spread evenly and placement never depends on Python's
# hash() (randomised per process for str, different across versions).
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_M64 = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """splitmix64(x) for an id 0 <= x < 2**64 (documented in docs/DISTRIBUTED.md)."""
    z = (x + _GOLDEN) & _M64
    z = ((z ^ (z >> 30)) * _MIX1) & _M64
    z = ((z ^ (z >> 27)) * _MIX2) & _M64
    return z ^ (z >> 31)


def shard_of(id: int, shards: int) -> int:
    """The shard that holds id: splitmix64(id) % shards."""
    return splitmix64(int(id) & _M64) % shards


def route(ids: Any, shards: int) -> np.ndarray:
    """shard_of for an array of ids (int64 ids are read as the uint64 they stand for)."""
    a = np.ascontiguousarray(ids)
    z = a.astype(np.uint64) if a.dtype.kind != "i" else a.astype(np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(shards)).astype(np.int64)


# -- errors ----------------------------------------------------------------------------
class ShardError(RuntimeError):
    """A shard could not do what was asked for a reason of the cluster, not the data."""

    def __init__(self, message: str, shard: int | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.shard = shard
        self.path = path


class ShardUnavailableError(ShardError):
    """No worker could hold the shard's actor (none reaches its file, or none matches
    its placement within ``start_timeout``)."""


class ShardWriteError(ShardError):
    """A write failed on some shards. ``failed`` maps each failed shard to its exception;
    ``committed`` lists the shards whose part committed; ``committed_ids`` (batch
    writes) the ids that are known to be stored. A shard whose worker died during the
    call may or may not have committed its part: its records are in ``uncertain_ids``."""

    def __init__(self, message: str, failed: dict[int, BaseException], committed: list[int],
                 committed_ids: np.ndarray | None = None, uncertain_ids: np.ndarray | None = None,
                 path: str | None = None) -> None:
        first = min(failed) if failed else None
        super().__init__(message, first, path)
        self.failed = failed
        self.committed = committed
        self.committed_ids = committed_ids
        self.uncertain_ids = uncertain_ids


def _is_lost(e: BaseException) -> bool:
    """True if e says the actor's worker is gone (rather than the call failing there)."""
    if isinstance(e, Error):
        return False
    if isinstance(e, CommClosedError):
        return True
    msg = str(e)
    return (isinstance(e, OSError) and "Actor's worker" in msg) or \
        (isinstance(e, ValueError) and "Actor was lost" in msg)


# -- statistics ------------------------------------------------------------------------
@dataclass
class ShardedStats:
    """stats() of a sharded collection: sums over the shards, and each shard's own."""

    vector_count: int
    document_count: int
    document_bytes: int
    file_size: int
    pages: int
    dimension: int
    distance_metric: str
    index_type: str
    snapshot_count: int
    shard_count: int
    shards: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# -- the client ------------------------------------------------------------------------
Placement = Union[None, str, Sequence[str], dict]
_Outcome = tuple  # ("ok", value) | ("err", exception, lost)
_Call = Tuple[int, str, Tuple[Any, ...], Dict[str, Any]]  # (shard, method, args, kwargs)


class _Ref:
    """One shard as the client sees it: its file, where it may run, its live actor."""

    def __init__(self, index: int, path: str, placement: Placement) -> None:
        self.index = index
        self.path = path
        self.placement = placement
        self.future: Future | None = None
        self.actor: Any = None
        self.address: str | None = None
        self.lock = threading.Lock()
        self.generation = 0  # bumped at every (re)start: a failure seen twice restarts once


def _layout(location: Any, shards: int | None, home: str | None) -> tuple[list[str], str | None]:
    if isinstance(location, (str, os.PathLike)):
        d = os.path.abspath(os.fspath(location))
        if shards is None:
            raise ValueError("create(client, directory, config, shards=S): give S")
        return [os.path.join(d, f"shard-{i:03d}.nvf") for i in range(shards)], (home or d)
    paths = [os.fspath(p) for p in location]
    if not paths:
        raise ValueError("a sharded collection needs at least one shard path")
    if shards is not None and shards != len(paths):
        raise ValueError(f"shards={shards} but {len(paths)} paths")
    return paths, (os.path.abspath(home) if home is not None else None)


def _config_dict(config: Any) -> dict[str, Any]:
    if isinstance(config, int):
        config = DatabaseConfig(config)
    d = dict(config.to_dict() if hasattr(config, "to_dict") else config)
    if not d.get("flat_config"):
        d.pop("flat_config", None)
    DatabaseConfig(**d)  # refuse a bad config here, before any shard is created
    return d


def _as_list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else list(x)


class ShardedNusterDB:
    """One collection over S shards held by Dask actors (docs/DISTRIBUTED.md).

    Build it with ``ShardedNusterDB.create`` or ``ShardedNusterDB.open``. Calls are
    synchronous and may come from several threads; the shards work in parallel.
    """

    #: how often a read is tried again on a re-created actor before giving up
    read_attempts = 3

    def __init__(self, client: Client, paths: list[str], *, home: str | None,
                 placement: Placement | Sequence[Placement] = None, snapshot: str | None = None,
                 read_only: bool = False, timeout: float | None = 5.0,
                 start_timeout: float = 60.0, _create: dict[str, Any] | None = None) -> None:
        """Use create() or open()."""
        self.client = client
        self.paths = list(paths)
        self.home = home
        self.snapshot_name = snapshot
        self.read_only = read_only or snapshot is not None
        self.timeout = timeout
        self.start_timeout = start_timeout
        S = len(self.paths)
        if placement is None or isinstance(placement, (str, dict)):
            places: list[Placement] = [placement] * S
        else:
            places = list(placement)
            if len(places) != S:
                raise ValueError(f"placement lists {len(places)} entries for {S} shards")
        self._refs = [_Ref(i, p, places[i]) for i, p in enumerate(self.paths)]
        self._rng = np.random.default_rng()
        self._closed = False
        #: the last knn call's timing: shard seconds and the client's merge seconds
        self.last_knn_timing: dict[str, Any] = {}
        self._start_all(_create)
        cfg = self._run([(0, "config", (), {})], write=False)[0]
        self.config = DatabaseConfig(**{k: v for k, v in cfg.items() if k != "flat_config" or v})
        self.dim: int = cfg["dim"]
        self.distance_metric: str = cfg["distance_metric"]
        self.index_type: str = cfg["index_type"]

    # -- construction ------------------------------------------------------------------
    @classmethod
    def create(cls, client: Client, location: Any, config: Any, shards: int | None = None, *,
               placement: Placement | Sequence[Placement] = None, home: str | None = None,
               timeout: float | None = 5.0, start_timeout: float = 60.0) -> ShardedNusterDB:
        """Create a new collection of S shards.

        location: a directory (shards ``DIR/shard-000.nvf`` ...; the collection file
        ``DIR/nusterdb-shards.json`` and snapshot manifests go there too), or a list of
        S file paths in routing order (then ``home=`` names a directory the client can
        write for the collection file and snapshot manifests; without it there are no
        snapshots). config: a ``DatabaseConfig`` (or its ``to_dict()``, or a dimension).
        placement: None (spread over the workers present, any worker after a failure:
        the files must be on a shared file system), or one entry, or one per shard:
        a worker address or host name (or a list of them), or a dict of Dask
        resources (``{"disk-a": 1}``) that only the workers which reach the file have.
        Existing shard files are refused (``FileExistsError``)."""
        paths, home = _layout(location, shards, home)
        cfg = _config_dict(config)
        if home is not None and os.path.exists(_manifest.collection_path(home)):
            raise FileExistsError(f"{home} already holds a sharded collection; use open()")
        db = cls(client, paths, home=home, placement=placement, timeout=timeout,
                 start_timeout=start_timeout, _create=cfg)
        if home is not None:
            _manifest.write_collection(home, paths, cfg)
        return db

    @classmethod
    def open(cls, client: Client, location: Any, *, snapshot: str | None = None,
             read_only: bool = False, placement: Placement | Sequence[Placement] = None,
             home: str | None = None, timeout: float | None = 5.0,
             start_timeout: float = 60.0) -> ShardedNusterDB:
        """Open an existing collection: a directory made by create(), or the list of
        shard paths in routing order. ``snapshot=`` opens the cut that snapshot(name)
        recorded, read-only; a shard without that snapshot is an error naming it."""
        if isinstance(location, (str, os.PathLike)):
            home = os.path.abspath(home or os.fspath(location))
            info = _manifest.read_collection(home)
            paths = list(info["paths"])
        else:
            paths, home = _layout(location, None, home)
            if home is not None and os.path.exists(_manifest.collection_path(home)):
                info = _manifest.read_collection(home)
                if info["shards"] != len(paths):
                    raise ManifestError(f"{home}: the collection has {info['shards']} shards, "
                                        f"{len(paths)} paths given")
        if snapshot is not None:
            if home is None:
                raise ValueError("snapshot= needs the collection's home (the manifests are there)")
            man = _manifest.read_snapshot(home, snapshot)
            if man["shards"] != len(paths):
                raise ManifestError(f"snapshot {snapshot!r} spans {man['shards']} shards, "
                                    f"the collection has {len(paths)}")
        db = cls(client, paths, home=home, placement=placement, snapshot=snapshot,
                 read_only=read_only, timeout=timeout, start_timeout=start_timeout)
        if snapshot is not None:
            # The snapshot's document says which shard of which cut it is: paths given
            # in another order would route every record to the wrong shard.
            docs = db._run([(i, "snapshot_doc", (snapshot,), {}) for i in range(db.shards)], write=False)
            for i, doc in enumerate(docs):
                tag = (doc or {}).get("nusterdb_sharded", {})
                if tag.get("shard") != i or tag.get("shards") != db.shards:
                    db.close()
                    raise ManifestError(f"shard {i} ({paths[i]}): snapshot {snapshot!r} was taken "
                                        f"as shard {tag.get('shard')} of {tag.get('shards')}")
        return db

    def _submit_actor(self, ref: _Ref, create: dict[str, Any] | None, workers: list[str] | None) -> Future:
        kw: dict[str, Any] = {"actor": True, "pure": False, "allow_other_workers": False}
        if isinstance(ref.placement, dict):
            kw["resources"] = ref.placement
        elif ref.placement is not None:
            kw["workers"] = [ref.placement] if isinstance(ref.placement, str) else list(ref.placement)
        elif workers is not None:
            kw["workers"] = workers
        return self.client.submit(Shard, ref.path, ref.index, len(self._refs), config=create,
                                  create=create is not None, snapshot=self.snapshot_name,
                                  read_only=self.read_only, timeout=self.timeout, **kw)

    def _bind(self, ref: _Ref, fut: Future) -> None:
        actor = fut.result(timeout=self.start_timeout)
        ref.future, ref.actor, ref.address = fut, actor, actor._address
        ref.generation += 1

    def _start_all(self, create: dict[str, Any] | None) -> None:
        live = sorted(self.client.ncores())
        if not live:
            raise ShardUnavailableError("the Dask cluster has no workers")
        futs = []
        for ref in self._refs:
            want = [live[ref.index % len(live)]] if ref.placement is None else None
            futs.append(self._submit_actor(ref, create, want))
        errors: list[BaseException] = []
        for ref, fut in zip(self._refs, futs):
            try:
                self._bind(ref, fut)
            except FileNotFoundError:
                # The preferred worker cannot see the file: any other that can.
                fut.release()
                try:
                    self._restart(ref, ref.generation, exclude={live[ref.index % len(live)]})
                except BaseException as e:
                    errors.append(e)
            except BaseException as e:
                fut.cancel()
                errors.append(self._start_error(ref, e))
        if errors:
            self.close()
            raise errors[0]

    def _start_error(self, ref: _Ref, e: BaseException) -> BaseException:
        if isinstance(e, NotFoundError) and self.snapshot_name is not None:
            return NotFoundError(f"shard {ref.index} ({ref.path}) has no snapshot {self.snapshot_name!r}")
        if isinstance(e, Error) or isinstance(e, (FileExistsError, FileNotFoundError, ValueError)):
            return e
        if isinstance(e, TimeoutError) or type(e).__name__ == "TimeoutError":
            return ShardUnavailableError(
                f"shard {ref.index} ({ref.path}): no worker took it within {self.start_timeout} s "
                f"(placement {ref.placement!r})", ref.index, ref.path)
        return e

    def _restart(self, ref: _Ref, seen_generation: int, exclude: set[str] | None = None) -> None:
        """Re-create the shard's actor on a worker that can reach its file."""
        with ref.lock:
            if ref.generation != seen_generation and ref.future is not None and ref.future.status == "finished":
                return  # another thread restarted it already
            dead = ref.address
            if ref.future is not None:
                ref.future.release()
            ref.future = ref.actor = None
            exclude = set(exclude or ())
            if dead is not None:
                exclude.add(dead)
            if ref.placement is not None:
                candidates: list[list[str] | None] = [None]
            else:
                live = sorted(self.client.ncores())
                load = collections.Counter(r.address for r in self._refs if r.actor is not None)
                order = sorted((w for w in live if w not in exclude), key=lambda w: (load[w], w))
                candidates = [[w] for w in order]
            last: BaseException | None = None
            for workers in candidates:
                fut = self._submit_actor(ref, None, workers)
                try:
                    self._bind(ref, fut)
                    return
                except FileNotFoundError as e:
                    fut.release()
                    last = e
                except BaseException as e:
                    fut.cancel()
                    last = self._start_error(ref, e)
                    if isinstance(last, Error):
                        raise last
            raise ShardUnavailableError(
                f"shard {ref.index} ({ref.path}): no live worker can hold it"
                + (f" ({last})" if last else ""), ref.index, ref.path) from last

    # -- calling the shards ------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("the sharded collection is closed")

    def _submit(self, calls: Sequence[_Call]) -> list[tuple[int, Any]]:
        """Send every call at once; the shards run them in parallel."""
        self._check_open()
        out = []
        for i, method, args, kwargs in calls:
            ref = self._refs[i]
            gen = ref.generation
            try:
                out.append((gen, getattr(ref.actor, method)(*args, **kwargs)))
            except BaseException as e:  # the proxy refuses at once if the actor is lost
                out.append((gen, e))
        return out

    def _gather(self, calls: Sequence[_Call], sent: list[tuple[int, Any]], *,
                write: bool) -> list[_Outcome]:
        """Wait for every call. A shard whose worker died gets a new actor; reads are
        sent again (up to read_attempts), writes report the loss."""
        outcomes: list[_Outcome] = [("err", None, False)] * len(calls)
        attempt = 0
        while True:
            retry = []
            for j, (gen, f) in enumerate(sent):
                if f is None:
                    continue
                try:
                    if isinstance(f, BaseException):
                        raise f
                    outcomes[j] = ("ok", f.result())
                except BaseException as e:
                    if not _is_lost(e):
                        outcomes[j] = ("err", e, False)
                        continue
                    ref = self._refs[calls[j][0]]
                    try:
                        self._restart(ref, gen)
                    except BaseException as e2:
                        outcomes[j] = ("err", e2, True)
                        continue
                    outcomes[j] = ("err", e, True)
                    if not write:
                        retry.append(j)
            attempt += 1
            if not retry or attempt >= self.read_attempts:
                return outcomes
            resent = self._submit([calls[j] for j in retry])
            sent = [(0, None)] * len(calls)  # type: ignore[list-item]
            for j, s in zip(retry, resent):
                sent[j] = s

    def _raise(self, calls: Sequence[_Call], outcomes: list[_Outcome], *,
               write: bool, committed_ids: np.ndarray | None = None,
               uncertain_ids: np.ndarray | None = None) -> None:
        errs = {calls[j][0]: o for j, o in enumerate(outcomes) if o[0] == "err"}
        if not errs:
            return
        first = min(errs)
        exc, lost = errs[first][1], errs[first][2]
        ok = sorted({calls[j][0] for j, o in enumerate(outcomes) if o[0] == "ok"})
        any_lost = any(o[2] for o in errs.values())
        if not write:
            if lost and not isinstance(exc, ShardError):
                raise ShardUnavailableError(f"shard {first} ({self.paths[first]}): {exc}",
                                            first, self.paths[first]) from exc
            raise exc
        if not ok and not any_lost and committed_ids is None:
            raise exc  # nothing committed anywhere: the shard's own error, as NusterDB raises it
        failed = {i: o[1] for i, o in errs.items()}
        what = ", ".join(f"shard {i} ({self.paths[i]}): "
                         + ("its worker was lost; the write may or may not have committed" if o[2]
                            else f"{type(o[1]).__name__}: {o[1]}") for i, o in sorted(errs.items()))
        raise ShardWriteError(f"write failed on {len(errs)} of {self.shards} shards: {what}"
                              + (f"; committed on shards {ok}" if ok else ""),
                              failed, ok, committed_ids, uncertain_ids, self.paths[first]) from exc

    def _run(self, calls: Sequence[_Call], *, write: bool) -> list[Any]:
        outcomes = self._gather(calls, self._submit(calls), write=write)
        self._raise(calls, outcomes, write=write)
        return [o[1] for o in outcomes]

    def _one(self, id: int, method: str, *args: Any, write: bool) -> Any:
        return self._run([(self.shard_of(id), method, (id, *args), {})], write=write)[0]

    def _all(self, method: str, *args: Any, write: bool, **kwargs: Any) -> list[Any]:
        return self._run([(i, method, args, kwargs) for i in range(self.shards)], write=write)

    # -- properties --------------------------------------------------------------------
    @property
    def shards(self) -> int:
        """S, the number of shards."""
        return len(self._refs)

    def shard_of(self, id: int) -> int:
        """The shard that holds (or would hold) id."""
        return shard_of(id, self.shards)

    def workers(self) -> list[dict[str, Any]]:
        """Where each shard's actor runs now: worker address, pid, host, path."""
        where = self._all("where", write=False)
        return [dict(w, shard=i, worker=self._refs[i].address) for i, w in enumerate(where)]

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close every shard's handle and release its actor (idempotent)."""
        if self._closed:
            return
        for ref in self._refs:
            if ref.actor is not None:
                try:
                    ref.actor.close().result(timeout=30)
                except BaseException:
                    pass  # a lost worker closed it already
            if ref.future is not None:
                ref.future.release()
            ref.future = ref.actor = None
        self._closed = True

    def __enter__(self) -> ShardedNusterDB:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"dim={getattr(self, 'dim', '?')}"
        return f"<ShardedNusterDB {self.shards} shards {state} home={self.home!r}>"

    def __len__(self) -> int:
        return self.count()

    def __contains__(self, id: object) -> bool:
        return isinstance(id, int) and id >= 0 and bool(self._one(id, "contains", write=False))

    def __getitem__(self, id: int) -> Vector:
        v = self.get(id)
        if v is None:
            raise NotFoundError(f"no record with id {id}")
        return v

    # -- ids ---------------------------------------------------------------------------
    def _draw_ids(self, n: int, shard: int | None = None) -> np.ndarray:
        """n new ids. A run of consecutive ids from a random start below 2**62 (so that
        they stay positive as int64 and each shard's part is ascending, which keeps its
        id B-tree writes local); uniqueness is checked where it can be: the owning
        shard refuses an id it has (ExistsError) and the caller draws again. With
        shard=i, only ids that route to shard i."""
        base = int(self._rng.integers(0, 1 << 62))
        if shard is None:
            return np.arange(base, base + n, dtype=np.int64)
        out: list[np.ndarray] = []
        have = 0
        while have < n:
            cand = np.arange(base, base + self.shards * (n - have) + 64, dtype=np.int64)
            mine = cand[route(cand, self.shards) == shard][: n - have]
            out.append(mine)
            have += len(mine)
            base = int(cand[-1]) + 1
        return np.concatenate(out)

    # -- records -----------------------------------------------------------------------
    def add(self, id: int, vector: Any, metadata: Any = None) -> None:
        """Add a record with the given id on its shard; ExistsError if it exists."""
        self._one(id, "add", vector, metadata, write=True)

    def upsert(self, id: int, vector: Any, metadata: Any = None) -> None:
        self._one(id, "upsert", vector, metadata, write=True)

    def insert(self, vector: Any, metadata: Any = None) -> int:
        """Add a record under a new id drawn by the client; returns the id."""
        while True:
            id = int(self._draw_ids(1)[0])
            try:
                self.add(id, vector, metadata)
                return id
            except ExistsError:
                continue  # drawn before: draw again

    def get(self, id: int) -> Vector | None:
        return self._one(id, "get", write=False)

    def get_metadata(self, id: int) -> Metadata | None:
        return self._one(id, "get_metadata", write=False)

    def update(self, id: int, vector: Any) -> None:
        self._one(id, "update", vector, write=True)

    def update_metadata(self, id: int, metadata: Any) -> None:
        self._one(id, "update_metadata", metadata, write=True)

    def delete(self, id: int) -> bool:
        return bool(self._one(id, "delete", write=True))

    def count(self) -> int:
        return int(sum(self._all("count", write=False)))

    def batch_insert(self, vectors: Iterable[Any], metadata_list: Sequence[Any] | None = None) -> list[int]:
        """Insert vectors under new ids (a list of ints). Each shard commits its part in
        one transaction; the batch as a whole is not atomic across shards."""
        rows = [np.asarray(v.to_list() if isinstance(v, Vector) else v, dtype=np.float32)
                for v in vectors]
        X = np.stack(rows) if rows else np.zeros((0, self.dim), np.float32)
        return [int(i) for i in self.add_items(X, metadata=metadata_list)]

    def add_items(self, X: Any, ids: Any = None, metadata: Sequence[Any] | None = None,
                  threads: int = 0, chunk_rows: int = 65536) -> np.ndarray:
        """Add the rows of X (n x dim: a numpy array or buffer, or a ``dask.array``).

        ids: the ids (ints), or None to draw new ones. Rows go to their shards in
        chunks of chunk_rows (a dask.array: its own row chunks, each fetched by the
        shards from the worker that computed it); each shard adds its part of a chunk
        in one transaction, and the shards work in parallel. Returns the ids (int64).
        On a failure, ShardWriteError says which shards failed and which ids are
        committed (``committed_ids``)."""
        if _is_dask_array(X):
            return self._add_items_dask(X, ids, metadata, threads)
        X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
        if X.ndim == 1:
            X = X.reshape(1, -1)
        n = len(X)
        ids_arr, drawn = self._check_batch(n, X.shape[1], ids, metadata)
        sh = route(ids_arr, self.shards)
        meta = _as_list(metadata) if metadata is not None else None

        def parts(lo: int, hi: int) -> Iterable[tuple[int, np.ndarray, Any, Any]]:
            rows_sh = sh[lo:hi]
            for i in range(self.shards):
                rows = lo + np.flatnonzero(rows_sh == i)
                if len(rows):
                    yield i, rows, X[rows], None
        return self._write_chunks(n, ids_arr, drawn, meta, threads,
                                  ((lo, min(lo + chunk_rows, n)) for lo in range(0, n, chunk_rows)), parts)

    def _check_batch(self, n: int, dim: int, ids: Any, metadata: Any) -> tuple[np.ndarray, bool]:
        if dim != self.dim:
            from ._core import InvalidArgumentError
            raise InvalidArgumentError(f"vectors have {dim} components, the collection has {self.dim}")
        if metadata is not None and len(metadata) != n:
            raise ValueError(f"{len(metadata)} metadata entries for {n} rows")
        if ids is None:
            return self._draw_ids(n), True
        a = np.asarray(ids)
        if a.dtype.kind == "u":
            a = a.astype(np.uint64).view(np.int64)
        a = a.astype(np.int64).reshape(-1)
        if len(a) != n:
            raise ValueError(f"{len(a)} ids for {n} rows")
        return a, False

    def _write_chunks(self, n: int, ids: np.ndarray, drawn: bool, meta: list[Any] | None, threads: int,
                      chunks: Iterable[tuple[int, int]],
                      parts: Callable[[int, int], Iterable[tuple[int, np.ndarray, Any, Any]]]) -> np.ndarray:
        """Send each chunk's parts to their shards, two chunks in flight (one being
        written while the next travels). parts(lo, hi) yields (shard, rows, data, keep)
        where data is the rows' vectors or a future of them, keep anything to hold on to."""
        committed = np.zeros(n, dtype=bool)
        inflight: collections.deque = collections.deque()
        failures: list[tuple[list, list, Any]] = []

        def send(lo: int, hi: int) -> None:
            calls: list[_Call] = []
            rowsets: list[np.ndarray] = []
            keep: list[Any] = []
            for i, rows, data, k in parts(lo, hi):
                m = [meta[r] for r in rows] if meta is not None else None
                calls.append((i, "add_items", (data, ids[rows], m, threads), {}))
                rowsets.append(rows)
                keep.append(k)
            inflight.append((calls, rowsets, keep, self._submit(calls)))

        def collect() -> None:
            calls, rowsets, keep, sent = inflight.popleft()
            outcomes = self._gather(calls, sent, write=True)
            for j, o in enumerate(outcomes):
                if o[0] == "err" and drawn and isinstance(o[1], ExistsError):
                    # A drawn id that exists: only that shard's part was refused; give
                    # it ids of its own shard and send it again.
                    i, _, (data, _, m, th), _ = calls[j]
                    for _ in range(8):
                        ids[rowsets[j]] = self._draw_ids(len(rowsets[j]), shard=i)
                        calls[j] = (i, "add_items", (data, ids[rowsets[j]], m, th), {})
                        o = self._gather([calls[j]], self._submit([calls[j]]), write=True)[0]
                        if not (o[0] == "err" and isinstance(o[1], ExistsError)):
                            break
                    outcomes[j] = o
                if o[0] == "ok":
                    committed[rowsets[j]] = True
            if any(o[0] == "err" for o in outcomes):
                failures.append((calls, outcomes, rowsets))

        for lo, hi in chunks:
            if failures:
                break
            send(lo, hi)
            if len(inflight) > 1:
                collect()
        while inflight:
            collect()
        if failures:
            calls, outcomes, rowsets = failures[0]
            lost_rows = [rowsets[j] for j, o in enumerate(outcomes) if o[0] == "err" and o[2]]
            uncertain = ids[np.concatenate(lost_rows)] if lost_rows else ids[:0]
            self._raise(calls, outcomes, write=True, committed_ids=ids[committed], uncertain_ids=uncertain)
        return ids

    def _add_items_dask(self, X: Any, ids: Any, metadata: Any, threads: int) -> np.ndarray:
        X = X.astype(np.float32).rechunk({1: -1})
        n, dim = X.shape
        ids_arr, drawn = self._check_batch(int(n), int(dim), None if ids is None else np.asarray(ids), metadata)
        sh = route(ids_arr, self.shards)
        meta = _as_list(metadata) if metadata is not None else None
        blocks = list(X.to_delayed().ravel())
        bounds = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(int)

        def parts(lo: int, hi: int) -> Iterable[tuple[int, np.ndarray, Any, Any]]:
            b = int(np.searchsorted(bounds, lo))
            block = self.client.compute(blocks[b])
            rows_sh = sh[lo:hi]
            for i in range(self.shards):
                local = np.flatnonzero(rows_sh == i)
                if len(local):
                    # The shard's rows are cut out on a worker (next to the chunk) and
                    # fetched by the shard: the chunk never visits the client.
                    part = self.client.submit(_take_rows, block, local, pure=False)
                    yield i, lo + local, part, block
        return self._write_chunks(int(n), ids_arr, drawn, meta, threads,
                                  zip(bounds[:-1].tolist(), bounds[1:].tolist()), parts)

    # -- search ------------------------------------------------------------------------
    def search(self, query: Any, k: int = 10, ef_search: int | None = None,
               filter: str | None = None) -> list[tuple[int, float]]:
        """The k nearest [(id, distance), ...]: every shard's own top-k under the same
        filter, merged by (distance, id), as one NusterDB orders them."""
        q = query.to_list() if isinstance(query, Vector) else query
        hits = [h for part in self._all("search", q, k, ef_search, filter, write=False) for h in part]
        hits.sort(key=lambda h: (h[1], h[0]))
        return hits[:k]

    def range_search(self, query: Any, radius: float, filter: str | None = None) -> list[tuple[int, float]]:
        q = query.to_list() if isinstance(query, Vector) else query
        hits = [h for part in self._all("range_search", q, radius, filter, write=False) for h in part]
        hits.sort(key=lambda h: (h[1], h[0]))
        return hits

    def knn(self, Q: Any, k: int = 1, ef: int | None = None, filter: str | None = None,
            threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(ids, distances), two (nq, k) arrays as NusterDB.knn gives (-1 / +inf past the
        last result). Q: an array or buffer, or a ``dask.array`` of queries, which is
        searched chunk by chunk (each chunk fetched by the shards from the worker that
        holds it). threads: each shard's threads (0: all cores of its worker)."""
        if _is_dask_array(Q):
            return self._knn_dask(Q, k, ef, filter, threads)
        Q = np.ascontiguousarray(np.asarray(Q, dtype=np.float32))
        if Q.ndim == 1:
            Q = Q.reshape(1, -1)
        parts = self._all("knn", Q, k, ef, filter, threads, write=False)
        return self._merge_knn(parts, k)

    def _merge_knn(self, parts: list[tuple[np.ndarray, np.ndarray, float]], k: int) -> tuple[np.ndarray, np.ndarray]:
        t0 = time.perf_counter()
        if len(parts) == 1:
            ids, dist = parts[0][0], parts[0][1]
        else:
            I = np.concatenate([p[0] for p in parts], axis=1)
            D = np.concatenate([p[1] for p in parts], axis=1)
            # Ties by id as uint64, the order one NusterDB uses; padding (-1, +inf)
            # sorts last.
            order = np.lexsort((I.view(np.uint64), D), axis=1)[:, :k]
            ids = np.take_along_axis(I, order, axis=1)
            dist = np.take_along_axis(D, order, axis=1)
        self.last_knn_timing = {"shard_seconds": [p[2] for p in parts],
                                "merge_seconds": time.perf_counter() - t0}
        return ids, dist

    def _knn_dask(self, Q: Any, k: int, ef: int | None, filter: str | None,
                  threads: int) -> tuple[np.ndarray, np.ndarray]:
        Q = Q.astype(np.float32).rechunk({1: -1})
        nq = int(Q.shape[0])
        ids = np.full((nq, k), -1, dtype=np.int64)
        dist = np.full((nq, k), np.inf, dtype=np.float32)
        bounds = np.concatenate([[0], np.cumsum(Q.chunks[0])]).astype(int)
        inflight: collections.deque = collections.deque()

        def collect() -> None:
            lo, hi, block, calls, sent = inflight.popleft()
            outcomes = self._gather(calls, sent, write=False)
            self._raise(calls, outcomes, write=False)
            i_, d_ = self._merge_knn([o[1] for o in outcomes], k)
            ids[lo:hi, : i_.shape[1]] = i_
            dist[lo:hi, : d_.shape[1]] = d_
            block.release()

        for b, blk in enumerate(Q.to_delayed().ravel()):
            block = self.client.compute(blk)
            calls: list[_Call] = [(i, "knn", (block, k, ef, filter, threads), {}) for i in range(self.shards)]
            inflight.append((int(bounds[b]), int(bounds[b + 1]), block, calls, self._submit(calls)))
            if len(inflight) > 1:
                collect()
        while inflight:
            collect()
        return ids, dist

    # -- snapshots ---------------------------------------------------------------------
    def _need_home(self) -> str:
        if self.home is None:
            raise ValueError("snapshots of a sharded collection need its home directory "
                             "(create/open with home=DIR) for their manifests")
        return self.home

    def snapshot(self, name: str | None = None, metadata: Any = None) -> str:
        """Snapshot every shard under name, then record the cut in the manifest
        ``HOME/snapshots/NAME.json`` (written atomically): a cut without a manifest is
        not listed nor openable. If a shard fails, the shards that made theirs delete
        them again and ShardWriteError says which failed. Writes that this client has
        in flight finish first (its calls are synchronous); other clients' writes may
        land on some shards before and on others after the cut."""
        home = self._need_home()
        if name is None:
            name = "snapshot-" + time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}"
        if os.path.exists(_manifest.snapshot_path(home, name)):
            raise ExistsError(f"a snapshot named {name!r} exists")
        if isinstance(metadata, Metadata):
            metadata = metadata.to_dict()
        calls: list[_Call] = [(i, "snapshot", (name, {"nusterdb_sharded": {"name": name, "shard": i,
                                                              "shards": self.shards},
                                         "metadata": metadata}), {})
                 for i in range(self.shards)]
        outcomes = self._gather(calls, self._submit(calls), write=True)
        if any(o[0] == "err" for o in outcomes):
            made = [i for i, o in enumerate(outcomes) if o[0] == "ok"]
            if made:
                undo: list[_Call] = [(i, "delete_snapshot", (name,), {}) for i in made]
                self._gather(undo, self._submit(undo), write=True)
            self._raise(calls, [o if o[0] == "err" else ("err", RuntimeError("undone"), False)
                                for o in outcomes], write=True)
        members = [dict(o[1], shard=i, path=self.paths[i], snapshot=name) for i, o in enumerate(outcomes)]
        _manifest.write_snapshot(home, name, members)
        return name

    def create_snapshot(self, name: str | None = None) -> str:
        return self.snapshot(name)

    def list_snapshots(self) -> list[str]:
        """The complete cuts (those with a manifest), oldest first."""
        return _manifest.list_snapshots(self._need_home())

    def snapshot_manifest(self, name: str) -> dict[str, Any]:
        return _manifest.read_snapshot(self._need_home(), name)

    def delete_snapshot(self, name: str) -> None:
        """Remove the manifest first (the cut stops being openable at once), then each
        shard's snapshot."""
        home = self._need_home()
        _manifest.read_snapshot(home, name)
        _manifest.remove_snapshot(home, name)
        self._all("delete_snapshot", name, write=True)

    # -- maintenance -------------------------------------------------------------------
    def stats(self, detailed: bool = False) -> ShardedStats:
        """Sums over the shards, with each shard's own stats().to_dict() in ``shards``."""
        per = self._all("stats", detailed, write=False)
        snaps = len(self.list_snapshots()) if self.home is not None else min(p["snapshot_count"] for p in per)
        return ShardedStats(
            vector_count=sum(p["vector_count"] for p in per),
            document_count=sum(p["document_count"] for p in per),
            document_bytes=sum(p["document_bytes"] for p in per),
            file_size=sum(p["file_size"] for p in per),
            pages=sum(p["pages"] for p in per),
            dimension=per[0]["dimension"], distance_metric=per[0]["distance_metric"],
            index_type=per[0]["index_type"], snapshot_count=snaps, shard_count=self.shards, shards=per)

    def compact(self) -> None:
        """Compact every shard's file (in parallel; each is atomic on its own)."""
        self._all("compact", write=True)

    def sync(self) -> None:
        self._all("sync", write=True)


def _take_rows(block: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(block[rows], dtype=np.float32)


def _is_dask_array(x: Any) -> bool:
    return type(x).__module__.startswith("dask.array") and hasattr(x, "chunks") and hasattr(x, "to_delayed")
