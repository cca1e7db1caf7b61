"""The small JSON files a sharded collection keeps beside its shards (docs/DISTRIBUTED.md).

``home/nusterdb-shards.json`` names the shards in routing order, so that ``open`` finds
the same S and the same files; ``home/snapshots/NAME.json`` records a snapshot taken
across every shard. Both are written whole into a temporary file, synced, renamed
over the final name and the directory synced: a reader sees the old file or the new
one, never half of one, and a manifest that exists means every shard's snapshot was
taken before it was written.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

COLLECTION_FILE = "nusterdb-shards.json"
SNAPSHOT_DIR = "snapshots"
FORMAT = "nusterdb-sharded"
SNAPSHOT_FORMAT = "nusterdb-sharded-snapshot"
VERSION = 1
ROUTE = "splitmix64"


class ManifestError(ValueError):
    """A collection or snapshot manifest that is missing, damaged or does not match."""


def write_atomic(path: str, obj: Any) -> None:
    """Write obj as JSON to path: tmp file, fsync, rename, fsync of the directory."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    data = (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    # The rename is durable only once the directory entry is on disk.
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _read(path: str, fmt: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path}: not a valid manifest ({e})") from None
    if not isinstance(obj, dict) or obj.get("format") != fmt:
        raise ManifestError(f"{path}: not a {fmt} manifest")
    if obj.get("version") != VERSION:
        raise ManifestError(f"{path}: manifest version {obj.get('version')!r}, this module reads {VERSION}")
    if obj.get("route") != ROUTE:
        raise ManifestError(f"{path}: routing {obj.get('route')!r}, this module routes by {ROUTE}")
    return obj


def collection_path(home: str) -> str:
    return os.path.join(home, COLLECTION_FILE)


def write_collection(home: str, paths: list[str], config: dict[str, Any]) -> None:
    write_atomic(collection_path(home), {
        "format": FORMAT, "version": VERSION, "route": ROUTE, "shards": len(paths),
        "paths": paths, "config": config, "created_at": time.time(),
    })


def read_collection(home: str) -> dict[str, Any]:
    path = collection_path(home)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{home}: no sharded collection here (no {COLLECTION_FILE})")
    obj = _read(path, FORMAT)
    if not isinstance(obj.get("paths"), list) or len(obj["paths"]) != obj.get("shards"):
        raise ManifestError(f"{path}: 'paths' does not list {obj.get('shards')} shards")
    return obj


def snapshot_path(home: str, name: str) -> str:
    return os.path.join(home, SNAPSHOT_DIR, name + ".json")


def write_snapshot(home: str, name: str, members: list[dict[str, Any]]) -> None:
    write_atomic(snapshot_path(home, name), {
        "format": SNAPSHOT_FORMAT, "version": VERSION, "route": ROUTE, "name": name,
        "shards": len(members), "members": members, "created_at": time.time(),
    })


def read_snapshot(home: str, name: str) -> dict[str, Any]:
    path = snapshot_path(home, name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no snapshot {name!r} of the sharded collection (no manifest {path})")
    obj = _read(path, SNAPSHOT_FORMAT)
    members = obj.get("members")
    if not isinstance(members, list) or len(members) != obj.get("shards") or \
            [m.get("shard") for m in members] != list(range(len(members))):
        raise ManifestError(f"{path}: 'members' does not list shards 0..{obj.get('shards')} in order")
    return obj


def list_snapshots(home: str) -> list[str]:
    """Names of the complete cuts, oldest first (by the time their manifest records)."""
    directory = os.path.join(home, SNAPSHOT_DIR)
    if not os.path.isdir(directory):
        return []
    found = []
    for f in os.listdir(directory):
        if f.endswith(".json"):
            name = f[:-5]
            try:
                found.append((read_snapshot(home, name)["created_at"], name))
            except (ManifestError, FileNotFoundError):
                continue
    return [n for _, n in sorted(found)]


def remove_snapshot(home: str, name: str) -> None:
    os.unlink(snapshot_path(home, name))
