"""autolog's own warnings: once per topic, and pointing at the user's line, not at autolog's files."""

from __future__ import annotations

import warnings

import pytest

import autolog as al
from autolog import reporting


def _line_of(marker: str) -> int:
    with open(__file__, encoding="utf-8") as fh:
        return next(i for i, line in enumerate(fh, 1) if line.rstrip().endswith(marker))


def test_warning_points_at_the_users_call(store):
    reporting.reset_warnings()
    with al.start_run(capture_env=False, log_system_metrics=False):
        al.seed_everything(1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            al.seed_everything(2)  # USER LINE 1
    (warning,) = [w for w in caught if issubclass(w.category, reporting.AutologWarning)]
    assert warning.filename == __file__ and warning.lineno == _line_of("# USER LINE 1")


def test_integration_error_points_at_the_users_fit(store, monkeypatch):
    pytest.importorskip("sklearn", reason="pip install 'autolog[sklearn]'")
    from sklearn.linear_model import LinearRegression

    from autolog.integrations import _sklearn_patch

    def broken(*args, **kwargs):
        raise RuntimeError("our bug")

    monkeypatch.setenv("AUTOLOG_STRICT", "0")
    monkeypatch.setattr(_sklearn_patch, "log_flat_params", broken)
    reporting.reset_warnings()
    al.autolog(only=["sklearn"], log_models=False, capture_env=False, log_system_metrics=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])  # USER LINE 2
    ours = [w for w in caught if issubclass(w.category, reporting.AutologWarning)]
    assert ours and all(w.filename == __file__ and w.lineno == _line_of("# USER LINE 2") for w in ours)
    assert "our bug" in str(ours[0].message)


def test_integration_error_warning_is_one_line(monkeypatch):
    # An XGBoostError's message ends in 20 lines of native stack trace ("[bt] (0) libxgboost.so").
    monkeypatch.setenv("AUTOLOG_STRICT", "0")
    reporting.reset_warnings()
    native = "Check failed: importance_type == \"weight\"\nStack trace:\n" + "".join(f"  [bt] ({i}) libxgboost.so\n" for i in range(9))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reporting.report("xgboost", RuntimeError(native))
    (warning,) = [w for w in caught if issubclass(w.category, reporting.AutologWarning)]
    message = str(warning.message)
    assert "\n" not in message and "[bt]" not in message
    assert message.endswith('(RuntimeError: Check failed: importance_type == "weight")')
