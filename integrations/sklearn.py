"""scikit-learn integration: every estimator's fit, parameter searches, post-training metrics.

This module only declares the integration and loads models: importing it costs
nothing at ``autolog()``. The patching lives in ``_sklearn_patch`` and the metrics in
``_sklearn_metrics``, imported when scikit-learn itself is.

What a fit records: ``get_params(deep=True)``, tags with the estimator class, a
fingerprint of X and y, training metrics prefixed ``training_`` (classifiers: accuracy,
weighted precision/recall/f1, log_loss and roc_auc, one-vs-one weighted for multi-class as
in MLflow; regressors: mse, rmse, mae, r2; clusterers: silhouette; always ``training_score``)
with their direction (``autolog.goal.*``), the model (skops, else pickle; written from a
background thread, see ``_sklearn_models``). Transformer-like estimators (``transform``, no
``predict``: scalers, vectorizers, ``ColumnTransformer``) log nothing unless
``log_preprocessing=True``. Searches add ``best_*`` params, ``best_cv_score``,
``cv_results.csv`` and child runs for the best ``max_tuning_runs`` candidates (None: all) by
the refit metric, the selected one first, also when fitted on joblib's threading backend.
After the fit, ``model.score(X_test, y)`` and
``sklearn.metrics.<fn>(y, model.predict(X_test))`` are logged into the model's run as
``<Class>_score-X_test`` and ``<fn>-X_test``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from autolog.patching.plugins import Integration, integration_autolog

if TYPE_CHECKING:
    from autolog.tracking.run import ActiveRun

NAME = "sklearn"
_TRUSTED_ROOTS = ("sklearn", "numpy", "scipy", "builtins", "collections", "functools", "operator")


def _patch(sklearn: Any) -> None:
    from autolog.integrations._sklearn_patch import patch

    patch(sklearn)


def save_model(run: ActiveRun, est: Any, artifact_dir: str = "model") -> str:
    """Save a fitted estimator now (skops when installed, else pickle) with its versions."""
    from autolog.integrations._sklearn_models import save_model as save

    return save(run, est, artifact_dir)


def wait_for_models(run_id: str | None = None, timeout: float | None = None) -> bool:
    """Block until the models fits queued for saving (for ``run_id``, or all) are stored; False on timeout.

    Fits save their model from a background thread; ``load_model`` and the process's
    exit wait for it, a reader in this process that lists artifacts right away calls this.
    """
    module = sys.modules.get("autolog.integrations._sklearn_models")
    return True if module is None else module.wait_for_models(run_id, timeout)


def load_model(run_id: str, store: Any = None, artifact_dir: str = "model", trusted: list[str] | None = None) -> Any:
    """Load the estimator a run saved; it predicts the same as the original.

    skops files are loaded trusting only scikit-learn/NumPy/SciPy types (plus ``trusted``);
    a file needing other types raises a ValueError listing them. Pickle files (written
    when skops was absent) execute code on load: only load runs you trust.
    """
    from autolog.patching.models import model_file, resolve_store

    store = resolve_store(store)
    try:
        wait_for_models(store.resolve_run_id(run_id))  # a fit's model is written in the background
    except LookupError:
        pass  # an unknown run: model_file below says so
    with model_file(store, run_id, artifact_dir, flavor=NAME) as (meta, path):
        if meta.get("format") == "pickle":
            import pickle

            with open(path, "rb") as fh:
                return pickle.load(fh)
        import skops.io as sio

        needed = sio.get_untrusted_types(file=path)
        allowed = set(trusted or [])
        unknown = [t for t in needed if t.split(".")[0] not in _TRUSTED_ROOTS and t not in allowed]
        if unknown:
            raise ValueError(f"model of run {run_id[:8]} needs types that are not trusted by default: {unknown}; pass trusted=[...]")
        return sio.load(path, trusted=needed)


INTEGRATION = Integration(
    name=NAME,
    module="sklearn",
    distribution="scikit-learn",
    supported=">=1.3,<1.11",
    extra="sklearn",
    patch=_patch,
)
autolog = integration_autolog(NAME)
