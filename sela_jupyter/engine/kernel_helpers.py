"""The hidden helpers every child kernel defines once: snapshots, threads, predictions, warm-up.

These are real functions, linted and unit-tested here; :func:`kernel_helpers_source` and
:func:`warmup_source` copy their source into a kernel (``cells.KERNEL_HELPERS`` and
``cells.WARMUP_SOURCE``), where ``get_ipython`` is the kernel's own. Each imports what it needs
when it runs, so the copied text needs nothing else from this module but the library list
:data:`_SELA_LIBRARIES`, which is copied with it. Names start with ``_sela`` so that they never
count as the user's variables.
"""

from __future__ import annotations

import inspect
from typing import Any

from .families import import_name, model_libraries, model_modules

#: The libraries whose versions a snapshot records: a snapshot is only restored into a kernel
#: with the very same versions.
_SELA_LIBRARIES = (
    "numpy",
    "pandas",
    *sorted(import_name(library) for library in model_libraries()),
    "cloudpickle",
    "scipy",
)

#: What a kernel must be able to import (pip name -> import name): the harness and the default
#: pipeline need these whatever the run does. A kernel lacking one is refused at start.
KERNEL_REQUIREMENTS = {
    "pandas": "pandas",
    "numpy": "numpy",
    "scikit-learn": "sklearn",
    "xgboost": "xgboost",
    "cloudpickle": "cloudpickle",
    "pyarrow": "pyarrow",
    "threadpoolctl": "threadpoolctl",
}

# What the harness and the stage templates import, whatever the model family.
_WARM_BASE = (
    "numpy",
    "pandas",
    "sklearn",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "sklearn.feature_selection",
    "sklearn.feature_extraction.text",
)
#: The modules a fresh kernel imports before its first simulation: the templates' own, then
#: those of the registered model families.
WARM_MODULES = (
    *_WARM_BASE,
    *sorted(set(model_modules()) - set(_WARM_BASE)),
    "cloudpickle",
    "pyarrow",
)


#: Base snapshots a kernel has read, by path (see ``_sela_base_frames``).
_SELA_BASES: dict[str, Any] = {}


def _sela_versions():
    import importlib
    import sys

    out = {"python": sys.version.split()[0]}
    for name in _SELA_LIBRARIES:
        try:
            out[name] = importlib.import_module(name).__version__
        except Exception:
            out[name] = None
    return out


def _sela_user_names():
    ip = get_ipython()
    hidden = set(ip.user_ns_hidden)
    return [k for k in list(ip.user_ns) if not k.startswith("_") and k not in hidden]


def _sela_frame_digest(value):
    """A digest of a DataFrame's columns, dtypes, index and values; None for anything else (or
    a frame pandas cannot hash, such as one holding lists)."""
    import hashlib

    import pandas as pd

    if not isinstance(value, pd.DataFrame):
        return None
    try:
        digest = hashlib.sha256(repr([(c, str(t)) for c, t in value.dtypes.items()]).encode())
        digest.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
    except Exception:
        return None
    return digest.hexdigest()


def _sela_write(path, payload):
    """Write ``payload`` to ``path`` whole or not at all (its directory made if missing)."""
    import os

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        f.write(payload)
    os.replace(path + ".tmp", path)


def _sela_base_frames(path):
    """The DataFrames of the snapshot at ``path`` (the setup's: train, dev, test), with their
    digests, as ``{name: (digest, frame)}``; read once per kernel, then kept. ``{}`` when the
    file is missing, unreadable or from other library versions."""
    import cloudpickle

    if path not in _SELA_BASES:
        try:
            with open(path, "rb") as f:
                snap = cloudpickle.load(f)
        except Exception:
            return {}
        if snap.get("versions") != _sela_versions() or snap.get("from_base"):
            return {}
        frames = {}
        for name, value in snap["state"].items():
            digest = _sela_frame_digest(value)
            if digest is not None:
                frames[name] = (digest, value)
        _SELA_BASES[path] = frames
    return _SELA_BASES[path]


def _sela_snapshot(path, base=None):
    """Pickle the user's variables (modules by name) so a child kernel can resume from them.

    With ``base`` (the setup's snapshot), a DataFrame equal to the base's frame of the same
    name (train, dev, test that no stage changed) is stored as a reference to it, not copied:
    on large data each node's snapshot would otherwise repeat the whole table.
    """
    import types

    import cloudpickle

    ns = get_ipython().user_ns
    state, modules, skipped, from_base = {}, {}, [], []
    frames = _sela_base_frames(base) if base else {}
    for name in _sela_user_names():
        value = ns[name]
        if isinstance(value, types.ModuleType):
            modules[name] = value.__name__
        elif name in frames and _sela_frame_digest(value) == frames[name][0]:
            from_base.append(name)
        else:
            state[name] = value

    def dump():
        snap = {"versions": _sela_versions(), "modules": modules, "state": state}
        if from_base:
            snap.update(base=base, from_base=from_base)
        return cloudpickle.dumps(snap)

    try:
        payload = dump()
    except Exception:
        for name in list(state):
            try:
                cloudpickle.dumps(state[name])
            except Exception:
                skipped.append(name)
                del state[name]
        payload = dump()
    _sela_write(path, payload)
    return {"bytes": len(payload), "skipped": skipped, "from_base": from_base}


def _sela_restore(path):
    """Load a snapshot into this kernel; False (nothing loaded) if it, or the base snapshot its
    unchanged frames refer to, is missing, unreadable or was taken with other library versions:
    the caller then replays the stage code instead. Frames from the base are copies, so a stage
    that changes one in place never changes the kept base."""
    import importlib

    import cloudpickle

    try:
        with open(path, "rb") as f:
            snap = cloudpickle.load(f)
    except Exception:
        return False
    if snap.get("versions") != _sela_versions():
        return False
    state = dict(snap["state"])
    if snap.get("from_base"):
        frames = _sela_base_frames(snap["base"])
        if any(name not in frames for name in snap["from_base"]):
            return False
        state.update({name: frames[name][1].copy() for name in snap["from_base"]})
    ns = get_ipython().user_ns
    for name, module in snap["modules"].items():
        ns[name] = importlib.import_module(module)
    ns.update(state)
    return True


def _sela_limit_threads(n):
    """Hold this kernel to ``n`` threads: its BLAS and OpenMP pools, and every ``n_jobs`` of
    the estimators the stage code built (``steps`` and ``model``) that asks for more."""
    import contextlib

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)
    ns = get_ipython().user_ns
    built = [ns.get("model")] + [
        step[1] for step in ns.get("steps") or [] if isinstance(step, tuple) and len(step) > 1
    ]
    for estimator in built:
        try:
            params = estimator.get_params(deep=True)
        except Exception:
            continue
        for key, value in params.items():
            jobs = key.rsplit("__", 1)[-1] == "n_jobs"
            if jobs and isinstance(value, int) and (value < 0 or value > n):
                with contextlib.suppress(Exception):
                    estimator.set_params(**{key: n})


def _sela_reset():
    """Forget the last simulation's variables; imported modules stay warm in sys.modules."""
    ns = get_ipython().user_ns
    for name in _sela_user_names():
        del ns[name]
    import gc

    gc.collect()


def _sela_fingerprint():
    """A digest of what the evaluation cell would fit (``steps``, ``model``, the training rows),
    or None when they cannot be pickled. Cell-defined functions pickle by value, with a file name
    that differs between kernels, so a digest can miss a match but never invent one."""
    import hashlib

    import cloudpickle

    ns = get_ipython().user_ns
    try:
        digest = hashlib.sha256(cloudpickle.dumps((ns["steps"], ns["model"])))
        rows = _sela_frame_digest(ns["train"])
    except Exception:
        return None
    if rows is None:
        return None
    digest.update(rows.encode())
    return digest.hexdigest()


def _sela_save_predictions(path):
    """Save the fitted pipeline's dev and test outputs (class probabilities where the model has
    them): test scores and the final ensemble are computed from these, outside the kernel."""
    import contextlib

    import cloudpickle
    import numpy as np
    import pandas as pd

    ns = get_ipython().user_ns
    pipeline = ns["pipeline"]
    frames = {"dev": ns["dev"].drop(columns=[ns["TARGET"]])}
    if isinstance(ns.get("test"), pd.DataFrame):
        frames["test"] = ns["test"].drop(columns=[ns["TARGET"]], errors="ignore")
    out = {}
    for part, X in frames.items():
        out[part] = {"predict": np.asarray(pipeline.predict(X))}
        if ns["TASK"] != "regression" and hasattr(pipeline, "predict_proba"):
            # An SVC without probability=True, e.g., has hard votes only.
            with contextlib.suppress(Exception):
                out[part]["predict_proba"] = np.asarray(pipeline.predict_proba(X), dtype=float)
    _sela_write(path, cloudpickle.dumps(out))


def _sela_cv_predictions(path, train_path, folds):
    """Out-of-fold outputs of the evaluated pipeline over every original training row, then
    every dev row, in ``folds`` folds of which dev is one: its outputs come from the pipeline
    already fitted on train, so only ``folds - 1`` refits of ``clone(pipeline)`` are needed, each
    on dev plus all but one slice of train (stratified for classifiers, the same slices in every
    kernel of the run). Rows the stage code dropped from ``train`` are still predicted, never
    fitted. Saved like ``_sela_save_predictions``'s parts; returns the number of rows, or 0 when
    the stage code reshaped the rows or columns so no fair folds exist."""

    import cloudpickle
    import numpy as np
    import pandas as pd
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold

    ns = get_ipython().user_ns
    target, train, dev, fitted = ns["TARGET"], ns["train"], ns["dev"], ns["pipeline"]
    original = pd.read_parquet(train_path)
    classifier = ns["TASK"] != "regression"
    if classifier:
        codes = {label: code for code, label in enumerate(ns["CLASSES"])}
        original[target] = original[target].map(codes)
    columns = [c for c in train.columns if c != target]
    if (
        list(columns) != [c for c in dev.columns if c != target]
        or not set(columns) <= set(original.columns)
        or not train.index.isin(original.index).all()
        or original.index.isin(dev.index).any()
    ):
        return 0
    y, rows = original[target].to_numpy(), len(original) + len(dev)
    slices = folds - 1
    if slices == 1:
        held_out = [np.arange(len(original))]
    else:
        stratified = classifier and np.bincount(y.astype(int)).min() >= slices
        splitter = (StratifiedKFold if stratified else KFold)(
            slices, shuffle=True, random_state=ns["SEED"]
        )
        held_out = [held for _, held in splitter.split(original, y)]

    def parts():
        """(positions in the output, a pipeline that never fitted those rows, their features)"""
        yield np.arange(len(original), rows), fitted, dev[columns]
        for held in held_out:
            kept = train[~train.index.isin(original.index[held])]
            fit = pd.concat([kept[[*columns, target]], dev[[*columns, target]]])
            yield held, clone(fitted).fit(fit[columns], fit[target]), original.iloc[held][columns]

    k = len(ns["CLASSES"]) if classifier else 0
    predict, proba = None, np.zeros((rows, k)) if classifier else None
    for at, pipeline, X in parts():
        values = np.asarray(pipeline.predict(X))
        if predict is None:
            predict = np.empty(rows, dtype=values.dtype)
        predict[at] = values
        if proba is not None:
            try:
                p = np.asarray(pipeline.predict_proba(X), dtype=float)
            except Exception:  # hard votes only (an SVC without probability=True)
                p = None
            if p is None or p.shape != (len(at), k):
                proba = None
            else:
                proba[at] = p
    out = {"predict": predict}
    if proba is not None:
        out["predict_proba"] = proba
    _sela_write(path, cloudpickle.dumps(out))
    return rows


def _sela_missing(modules):
    """The names of ``modules`` this kernel cannot import."""
    import importlib.util

    def importable(name):
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            return False

    return [name for name in modules if not importable(name)]


def _sela_workdir(name):
    """Make a scratch directory for a run's files and work in it: a kernel on another host
    receives the files it needs there (``_sela_put``) and leaves its own for the server to fetch
    (``_sela_get``). Returns its path."""
    import os
    import tempfile

    path = tempfile.mkdtemp(prefix=f"sela-{name}-")
    os.chdir(path)
    return path


def _sela_put(path, offset, data):
    """Write one base64 chunk of a file being sent, at byte ``offset`` of ``path + ".part"``."""
    import base64
    import os

    part = path + ".part"
    if offset == 0:
        os.makedirs(os.path.dirname(part) or ".", exist_ok=True)
    with open(part, "wb" if offset == 0 else "r+b") as f:
        f.seek(offset)
        f.write(base64.b64decode(data))


def _sela_put_done(path, size, digest):
    """Check the sent file's size and SHA-256 and move it into place (ValueError on a mismatch,
    and the partial file is removed)."""
    import hashlib
    import os

    part = path + ".part"
    with open(part, "rb") as f:
        payload = f.read()
    if len(payload) != size or hashlib.sha256(payload).hexdigest() != digest:
        os.remove(part)
        raise ValueError(f"{path} arrived damaged: {len(payload)} of {size} bytes, or a bad digest")
    os.replace(part, path)


def _sela_file_info(path):
    """``[size, sha256]`` of a file this kernel wrote, or None when there is none."""
    import hashlib
    import os

    if not os.path.isfile(path):
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return [os.path.getsize(path), digest.hexdigest()]


def _sela_get(path, offset, size):
    """``size`` bytes of ``path`` from byte ``offset``, base64-encoded."""
    import base64

    with open(path, "rb") as f:
        f.seek(offset)
        return base64.b64encode(f.read(size)).decode("ascii")


def _sela_warm(modules):
    """Import ``modules`` now, so that the first simulation does not pay for it."""
    import contextlib
    import importlib

    for name in modules:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def get_ipython() -> Any:
    """The running IPython shell, for calling the helpers outside a kernel (in one, the copied
    helpers use the kernel's own ``get_ipython``)."""
    from IPython import get_ipython as running_shell

    return running_shell()


#: The helpers a kernel defines, in this order.
HELPERS = (
    _sela_versions,
    _sela_user_names,
    _sela_frame_digest,
    _sela_write,
    _sela_base_frames,
    _sela_snapshot,
    _sela_restore,
    _sela_limit_threads,
    _sela_reset,
    _sela_fingerprint,
    _sela_save_predictions,
    _sela_cv_predictions,
    _sela_missing,
    _sela_workdir,
    _sela_put,
    _sela_put_done,
    _sela_file_info,
    _sela_get,
)


def kernel_helpers_source() -> str:
    """The source that defines the kernel helpers (and the library list they read)."""
    definitions = [f"_SELA_LIBRARIES = {_SELA_LIBRARIES!r}", "_SELA_BASES = {}"]
    definitions += [inspect.getsource(helper) for helper in HELPERS]
    return "\n\n\n".join(part.strip("\n") for part in definitions) + "\n"


def warmup_source() -> str:
    """The source that warms a fresh kernel up by importing :data:`WARM_MODULES`."""
    return f"{inspect.getsource(_sela_warm)}\n\n_sela_warm({WARM_MODULES!r})\n"
