"""The contract every integration keeps: enable → fit → logged; disable → originals restored.

Each case names the integration, a tiny real fit, and an attribute whose original
object must come back (``is``) after ``autolog(disable=True)``. Cases skip cleanly
when their framework is not installed.
"""

from __future__ import annotations

import importlib
import operator

import pytest

import autolog as al


def _sklearn_fit():
    from sklearn.linear_model import LogisticRegression

    LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])


# name -> (framework module, fit function, "module:attribute.path" that gets patched)
CASES = {
    "sklearn": ("sklearn", _sklearn_fit, "sklearn.linear_model._logistic:LogisticRegression.fit"),
}


def _resolve(spec: str):
    module_name, _, path = spec.partition(":")
    parent_path, _, attr = path.rpartition(".")
    module = importlib.import_module(module_name)
    parent = operator.attrgetter(parent_path)(module) if parent_path else module
    return parent, attr


@pytest.mark.parametrize("name", sorted(CASES))
def test_enable_fit_logged_disable_restored(name, store):
    framework, fit, spec = CASES[name]
    pytest.importorskip(framework, reason=f"pip install 'autolog[{name}]'")
    parent, attr = _resolve(spec)
    original = parent.__dict__.get(attr, getattr(parent, attr))
    enabled = al.autolog(only=[name], log_models=False)
    assert name in enabled
    assert parent.__dict__.get(attr, getattr(parent, attr)) is not original
    fit()
    runs = store.search_runs()
    assert len(runs) >= 1
    assert runs[0].tags.get("autolog.integration") == name
    al.autolog(only=[name], disable=True)
    assert parent.__dict__.get(attr, getattr(parent, attr)) is original
