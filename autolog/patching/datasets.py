"""Dataset fingerprints: shape, dtype and a fast content digest of training data.

Two runs trained on different data are told apart by the digest even when the
shapes agree. Hashing stays cheap on big inputs: arrays up to 64 MB are hashed
whole, larger ones by a strided sample plus their size, and the digest says which.
"""

from __future__ import annotations

from typing import Any

_FULL_LIMIT = 64 * 1024 * 1024


def _as_bytes(data: Any) -> tuple[bytes | memoryview | None, str]:
    """Raw bytes of an array-like (NumPy, pandas, scipy sparse, torch), or None."""
    try:
        if hasattr(data, "to_numpy") and hasattr(data, "columns"):  # pandas DataFrame
            cols = ",".join(map(str, data.columns)).encode()
            arr = data.to_numpy()
            return cols + _array_bytes(arr), "full"
        if hasattr(data, "to_numpy"):  # pandas Series
            return _array_bytes(data.to_numpy()), "full"
        if hasattr(data, "tocsr") and hasattr(data, "data"):  # scipy sparse
            csr = data.tocsr()
            return b"".join(bytes(_array_bytes(a)) for a in (csr.data, csr.indices, csr.indptr)), "full"
        if hasattr(data, "detach") and hasattr(data, "cpu"):  # torch tensor
            return _array_bytes(data.detach().cpu().numpy()), "full"
        if hasattr(data, "tobytes") and hasattr(data, "nbytes"):
            return _array_bytes(data), "full"
    except Exception:
        return None, "unavailable"
    return None, "unavailable"


def _array_bytes(arr: Any) -> bytes | memoryview:
    import numpy as np

    arr = np.asarray(arr)
    if arr.dtype == object:
        return repr(arr.tolist()).encode()
    arr = np.ascontiguousarray(arr)
    if arr.nbytes > _FULL_LIMIT:
        flat = arr.reshape(-1)
        step = max(1, flat.size // (_FULL_LIMIT // max(1, arr.itemsize)))
        return flat[::step].tobytes() + str(arr.shape).encode()
    return memoryview(arr).cast("B")


def fingerprint(data: Any) -> dict[str, str]:
    """``{"shape": ..., "dtype": ..., "digest": ...}`` for an array-like; empty if unknown."""
    if data is None:
        return {}
    info: dict[str, str] = {}
    shape = getattr(data, "shape", None)
    if shape is None and hasattr(data, "__len__"):
        shape = (len(data),)
    if shape is not None:
        info["shape"] = "x".join(str(int(s)) for s in shape)
    dtypes = getattr(data, "dtypes", None)
    dtype = getattr(data, "dtype", None)
    if dtype is not None:
        info["dtype"] = str(dtype)
    elif dtypes is not None:
        info["dtype"] = ",".join(sorted({str(d) for d in dtypes}))
    import hashlib  # its OpenSSL binding costs milliseconds at import

    raw, how = _as_bytes(data)
    if raw is not None:
        info["digest"] = hashlib.sha256(raw).hexdigest()[:16]
    elif how == "unavailable" and isinstance(data, (list, tuple)):
        info["digest"] = hashlib.sha256(repr(data).encode()).hexdigest()[:16]
    return info


def dataset_records(name: str, data: Any, context: str = "training") -> tuple[dict[str, str], dict[str, str]]:
    """The params ``dataset.<name>.shape/dtype/digest`` and tag ``dataset.<name>.context`` of a dataset.

    For callers that write them together with their other params and tags (one transaction).
    """
    info = fingerprint(data)
    if not info:
        return {}, {}
    return {f"dataset.{name}.{k}": v for k, v in info.items()}, {f"dataset.{name}.context": context}


def log_dataset(fit_run, name: str, data: Any, context: str = "training") -> None:
    """Log a dataset's fingerprint as params ``dataset.<name>.shape/dtype/digest``."""
    params, tags = dataset_records(name, data, context)
    if params:
        fit_run.log_params(params)
        fit_run.run.set_tags(tags)
