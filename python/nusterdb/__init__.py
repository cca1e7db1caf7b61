"""NusterDB: an embedded vector database in one .nvf file.

Everything lives in the extension module ``nusterdb._core`` (docs/PYTHON.md).
"""

from ._core import *  # noqa: F401,F403
from ._core import __version__

__all__ = [
    "NusterDB",
    "Vector",
    "DistanceMetric",
    "IndexType",
    "Compression",
    "Metadata",
    "HNSWConfig",
    "FlatIndexConfig",
    "StorageConfiguration",
    "DatabaseConfig",
    "DatabaseStats",
    "Error",
    "InvalidArgumentError",
    "FilterError",
    "NotFoundError",
    "ExistsError",
    "ReadOnlyError",
    "LockedError",
    "CorruptError",
    "VersionError",
    "NotADatabaseError",
    "FullError",
    "StaleError",
    "BusyError",
    "TransactionError",
    "ClosedError",
    "NotSupportedError",
    "StorageError",
    "simd_level",
    "__version__",
]
