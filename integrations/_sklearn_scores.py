"""Training metrics from one ``predict`` and one ``predict_proba``, with one label encoding.

scikit-learn's metric functions validate their inputs on every call (parameter checks,
``type_of_target``, unique labels, finiteness): about 7 ms for the six training metrics on
5,000 rows, twenty times the two predictions. Here the labels are encoded once against the
classifier's ``classes_`` and each metric is the arithmetic of scikit-learn's own
implementation (1.9) on those arrays, the same NumPy operations in the same order, so the
values are the same floats; tests compare them with ``sklearn.metrics`` for equality.

The fast path covers the common case: 1-D targets whose labels are all in ``classes_``
and all present, ``float64`` sample weights, scikit-learn 1.9 or later (older releases
normalize and clip probabilities differently). Anything else (multi-output, a class absent
from y, other weight dtypes) returns None and the caller uses scikit-learn's functions.
"""

from __future__ import annotations

import sys
from itertools import combinations
from typing import Any

import numpy as np


def applies() -> bool:
    """Whether the installed scikit-learn computes its metrics the way this module does (1.9+)."""
    global _APPLIES
    if _APPLIES is None:
        import sklearn

        try:
            major, minor = (int(part) for part in sklearn.__version__.split(".")[:2])
            _APPLIES = (major, minor) >= (1, 9)
        except ValueError:
            _APPLIES = False
    return _APPLIES


_APPLIES: bool | None = None


def predict_from_proba(est: Any, proba: Any) -> Any:
    """``est.predict(X)`` from its ``predict_proba(X)`` when sklearn's predict is exactly that, else None.

    A single-output forest's ``predict`` is ``classes_.take(argmax(predict_proba(X)))``
    (``ForestClassifier.predict`` in every supported release), also behind a ``Pipeline``
    (the same transforms feed both) or a refitted search (both call ``best_estimator_``):
    taking the labels from the probabilities already computed halves the cost of a
    RandomForest's training metrics (each prediction walks every tree) and gives the same labels.
    """
    forest = _predicting_forest(est) if proba is not None else None
    if forest is None or getattr(forest, "n_outputs_", None) != 1:
        return None
    classes = getattr(forest, "classes_", None)
    if not isinstance(proba, np.ndarray) or proba.ndim != 2 or not isinstance(classes, np.ndarray) or proba.shape[1] != classes.shape[0]:
        return None
    return classes.take(np.argmax(proba, axis=1), axis=0)


def _predicting_forest(est: Any, depth: int = 0) -> Any:
    # The forest whose own predict/predict_proba est's predict/predict_proba are, or None.
    owner = next((k for k in type(est).__mro__ if "predict" in k.__dict__), None)
    forest = sys.modules.get("sklearn.ensemble._forest")
    if forest is not None and owner is getattr(forest, "ForestClassifier", None):
        return est
    if owner is None or depth >= 4:
        return None
    pipeline = sys.modules.get("sklearn.pipeline")
    search = sys.modules.get("sklearn.model_selection._search")
    if pipeline is not None and owner is getattr(pipeline, "Pipeline", None):
        steps = getattr(est, "steps", None)
        inner = steps[-1][1] if isinstance(steps, list) and steps and isinstance(steps[-1], tuple) and len(steps[-1]) == 2 else None
    elif search is not None and owner is getattr(search, "BaseSearchCV", None):
        inner = getattr(est, "best_estimator_", None)
    else:
        return None
    return None if inner is None else _predicting_forest(inner, depth + 1)


def _weights(sample_weight: Any, n: int) -> tuple[np.ndarray | None, bool]:
    if sample_weight is None:
        return None, True
    w = np.asarray(sample_weight)
    if w.dtype != np.float64 or w.shape != (n,) or not np.isfinite(w).all():
        return None, False
    return w, True


def _encode(values: np.ndarray, classes: np.ndarray) -> np.ndarray | None:
    index = np.searchsorted(classes, values)
    index[index == classes.shape[0]] = 0
    return index if np.array_equal(classes[index], values) else None


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    # sklearn's _prf_divide with zero_division=0
    mask = denominator == 0
    denominator = np.array(denominator, dtype=np.float64, copy=True)
    denominator[mask] = 1
    result = np.asarray(numerator, dtype=np.float64) / denominator
    result[mask] = 0.0
    return result


def _weighted(values: np.ndarray, weights: np.ndarray) -> float:
    # sklearn's _nanaverage (no NaN can occur with zero_division=0)
    try:
        return float(np.average(values, weights=weights))
    except ZeroDivisionError:
        return float(np.average(values))


def classifier_metrics(y: Any, y_pred: Any, proba: Any, classes: Any, sample_weight: Any) -> dict[str, float | None] | None:
    """accuracy, weighted precision/recall/f1, log_loss and roc_auc (binary, or one-vs-one weighted); None: use sklearn."""
    try:
        y, y_pred, classes = np.asarray(y), np.asarray(y_pred), np.asarray(classes)
        if y.ndim != 1 or y_pred.shape != y.shape or classes.ndim != 1 or classes.shape[0] < 2 or not np.all(classes[:-1] < classes[1:]):
            return None
        sw, ok = _weights(sample_weight, y.shape[0])
        y_idx, p_idx = _encode(y, classes), _encode(y_pred, classes)
    except (TypeError, ValueError):
        return None  # labels that do not compare (mixed types): sklearn decides
    k = classes.shape[0]
    if not ok or y_idx is None or p_idx is None or not np.bincount(y_idx, minlength=k).all():
        return None
    out: dict[str, float | None] = {"training_accuracy_score": float(np.average(y_idx == p_idx, weights=sw))}
    out.update(_precision_recall_f1(y_idx, p_idx, sw, k))
    if proba is not None:
        proba = np.asarray(proba)
        if proba.shape == (y.shape[0], k) and proba.dtype.kind == "f":
            out["training_log_loss"] = _log_loss(y_idx, proba, sw)
            out["training_roc_auc"] = _binary_auc(y_idx == 1, proba[:, 1], sw) if k == 2 else _ovo_auc(y_idx, proba, sw, k)
    return out


def _precision_recall_f1(y_idx: np.ndarray, p_idx: np.ndarray, sw: np.ndarray | None, k: int) -> dict[str, float]:
    # sklearn's multilabel_confusion_matrix + precision_recall_fscore_support(average="weighted")
    tp_mask = y_idx == p_idx
    tp_bins = y_idx[tp_mask]
    tp_sum = np.bincount(tp_bins, weights=None if sw is None else sw[tp_mask], minlength=k) if tp_bins.shape[0] else np.zeros(k)
    pred_sum = np.bincount(p_idx, weights=sw, minlength=k)
    true_sum = np.bincount(y_idx, weights=sw, minlength=k)
    fp, fn, tp = pred_sum - tp_sum, true_sum - tp_sum, tp_sum
    tn = (np.sum(sw) if sw is not None else y_idx.shape[0]) - tp - fp - fn
    mcm = np.reshape(np.stack([tn, fp, fn, tp]).T, (-1, 2, 2))
    tp_sum = mcm[:, 1, 1]
    pred_sum = tp_sum + mcm[:, 0, 1]
    true_sum = tp_sum + mcm[:, 1, 0]
    precision = _divide(tp_sum, pred_sum)
    recall = _divide(tp_sum, true_sum)
    f_score = _divide(2 * tp_sum.astype(np.float64), 1 * true_sum.astype(np.float64) + pred_sum.astype(np.float64))
    return {"training_precision_score": _weighted(precision, true_sum), "training_recall_score": _weighted(recall, true_sum),
            "training_f1_score": _weighted(f_score, true_sum)}


def _log_loss(y_idx: np.ndarray, proba: np.ndarray, sw: np.ndarray | None) -> float | None:
    if proba.max() > 1 or proba.min() < 0:
        return None  # sklearn refuses these
    onehot = np.zeros(proba.shape, dtype=proba.dtype)
    onehot[np.arange(y_idx.shape[0]), y_idx] = 1
    eps = np.finfo(proba.dtype).eps
    clipped = np.clip(proba, eps, 1 - eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = onehot * np.log(clipped)
    terms = np.where(onehot == 0.0, np.asarray(0.0, dtype=terms.dtype), terms)
    return float(np.average(-np.sum(terms, axis=1), weights=sw))


def _binary_auc(positive: np.ndarray, score: np.ndarray, sw: np.ndarray | None) -> float | None:
    # sklearn's confusion_matrix_at_thresholds + roc_curve(drop_intermediate=True) + auc
    from scipy.integrate import trapezoid

    y_true = np.asarray(positive == 1, dtype=np.int32)
    if sw is not None:
        nonzero = sw != 0
        y_true, score, sw = y_true[nonzero], score[nonzero], sw[nonzero]
    order = (score.shape[0] - 1) - np.flip(np.argsort(np.flip(score), kind="stable"))
    score, y_true = score[order], y_true[order]
    if sw is not None:
        sw = sw[order]
    thresholds = np.concatenate([np.nonzero(np.diff(score))[0], np.asarray([y_true.shape[0] - 1])])
    weight = sw if sw is not None else 1.0
    y_float = y_true.astype(np.float64)
    tps = np.cumsum(y_float * weight, dtype=np.float64)[thresholds]
    if sw is not None:
        fps = np.cumsum((1 - y_float) * weight, dtype=np.float64)[thresholds]
    else:
        fps = 1 + thresholds.astype(np.float64) - tps
    if fps.shape[0] > 2:
        keep = np.where(np.concatenate([np.asarray([True]), np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), np.asarray([True])]))[0]
        fps, tps = fps[keep], tps[keep]
    tps = np.concatenate([np.asarray([0.0]), tps])
    fps = np.concatenate([np.asarray([0.0]), fps])
    if fps[-1] <= 0 or tps[-1] <= 0:
        return None  # one class only (after zero weights): undefined
    fpr, tpr = fps / fps[-1], tps / tps[-1]
    dx = np.diff(fpr)
    direction = -1 if np.any(dx < 0) and np.all(dx <= 0) else 1
    return float(direction * trapezoid(tpr, fpr))


def _ovo_auc(y_idx: np.ndarray, proba: np.ndarray, sw: np.ndarray | None, k: int) -> float | None:
    # sklearn's _average_multiclass_ovo_score(average="weighted"), MLflow's choice; sklearn
    # takes no sample_weight there and requires rows of probabilities.
    if sw is not None or not np.allclose(1, proba.sum(axis=1)):
        return None
    pairs = list(combinations(range(k), 2))
    scores = np.empty(len(pairs))
    prevalence = np.empty(len(pairs))
    for i, (a, b) in enumerate(pairs):
        a_mask, b_mask = y_idx == a, y_idx == b
        ab_mask = np.logical_or(a_mask, b_mask)
        prevalence[i] = np.average(ab_mask)
        a_score = _binary_auc(a_mask[ab_mask], proba[ab_mask, a], None)
        b_score = _binary_auc(b_mask[ab_mask], proba[ab_mask, b], None)
        if a_score is None or b_score is None:
            return None
        scores[i] = (a_score + b_score) / 2
    return float(np.average(scores, weights=prevalence))


def regressor_metrics(y: Any, y_pred: Any, sample_weight: Any) -> dict[str, float] | None:
    """mse, mae and r2 of one 1-D float64 output, as sklearn computes them; None: use sklearn."""
    try:
        y, y_pred = np.asarray(y), np.asarray(y_pred)
    except (TypeError, ValueError):
        return None
    if y.ndim != 1 or y_pred.shape != y.shape or y_pred.dtype != np.float64 or y.dtype.kind not in "iuf" or y.shape[0] < 2:
        return None
    sw, ok = _weights(sample_weight, y.shape[0])
    if not ok:
        return None
    y_true = y.astype(np.float64).reshape(-1, 1)
    y_hat = y_pred.reshape(-1, 1)
    if not (np.isfinite(y_true).all() and np.isfinite(y_hat).all()):
        return None
    mse = float(np.average(np.average((y_true - y_hat) ** 2, axis=0, weights=sw)))
    mae = float(np.average(np.average(np.abs(y_hat - y_true), axis=0, weights=sw)))
    weight = sw[:, None] if sw is not None else 1.0
    numerator = np.sum(weight * (y_true - y_hat) ** 2, axis=0)
    denominator = np.sum(weight * (y_true - np.average(y_true, axis=0, weights=sw)) ** 2, axis=0)
    scores = np.ones([1], dtype=numerator.dtype)
    valid = (denominator != 0) & (numerator != 0)
    scores[valid] = 1 - (numerator[valid] / denominator[valid])
    scores[(numerator != 0) & (denominator == 0)] = 0.0
    return {"training_mean_squared_error": mse, "training_mean_absolute_error": mae, "training_r2_score": float(np.average(scores))}
