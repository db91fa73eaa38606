"""The patch engine: exact revert, the one safe wrapper shape, re-entrancy and rank zero.

The "framework" is a plain module built in the test (``types.ModuleType`` registered
in ``sys.modules``) plus small classes: the engine only sees objects and attributes.
"""

from __future__ import annotations

import inspect
import sys
import threading
import types
import uuid
import warnings

import pytest

from autolog import reporting as safety
from autolog.patching.engine import REGISTRY, is_rank_zero, passthrough_guard, safe_wrapper
from autolog.reporting import AutologWarning

RANK_VARS = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID", "LOCAL_RANK")


@pytest.fixture
def name():
    """A fresh integration name per test (warnings are once per name and process)."""
    integration = f"fake{uuid.uuid4().hex[:8]}"
    yield integration
    REGISTRY.revert(integration)


@pytest.fixture
def fw():
    """A tiny framework module: ``fit`` records its calls, ``outer`` calls ``fit``."""
    module = types.ModuleType(f"fakefw_{uuid.uuid4().hex[:8]}")
    module.calls = []

    def fit(x, y=1, *, scale=2):
        """Fit the thing."""
        module.calls.append((x, y, scale))
        return x * scale + y

    def outer(x):
        return module.fit(x) + module.inner(x)

    def inner(x):
        module.calls.append(("inner", x))
        return x

    module.fit, module.outer, module.inner = fit, outer, inner
    sys.modules[module.__name__] = module
    yield module
    sys.modules.pop(module.__name__, None)


@pytest.fixture(autouse=True)
def rank_zero(monkeypatch):
    for var in RANK_VARS:
        monkeypatch.delenv(var, raising=False)


class Recorder:
    """before/after/on_error hooks that record what they saw."""

    def __init__(self, log: bool = True) -> None:
        self.log = log
        self.before_calls: list = []
        self.after_calls: list = []
        self.errors: list = []

    def before(self, call) -> bool:
        self.before_calls.append((call.args, dict(call.kwargs)))
        return self.log

    def after(self, call, result) -> None:
        self.after_calls.append(result)

    def on_error(self, call, exc) -> None:
        self.errors.append(exc)

    def wrapper(self, name: str):
        return safe_wrapper(name, self.before, self.after, self.on_error)


# -- REGISTRY.apply / revert -------------------------------------------------------------


class Base:
    def method(self, a, b=2):
        """Base method doc."""
        return ("method", a, b)

    @classmethod
    def cmethod(cls, a):
        """Class method doc."""
        return ("cmethod", cls.__name__, a)

    @staticmethod
    def smethod(a, *, k=0):
        """Static method doc."""
        return ("smethod", a, k)


class Child(Base):
    pass


def _count(hits):
    def wrapper(wrapped, instance, args, kwargs):
        hits.append(wrapped.__name__)
        return wrapped(*args, **kwargs)

    return wrapper


def test_apply_function_and_revert_restores_same_object(fw, name):
    original = fw.fit
    sig, doc = inspect.signature(original), original.__doc__
    hits: list = []
    REGISTRY.apply(name, fw, "fit", _count(hits))
    assert fw.fit is not original
    assert fw.fit(3) == 7 and hits == ["fit"]
    assert inspect.signature(fw.fit) == sig
    assert fw.fit.__name__ == "fit" and fw.fit.__doc__ == doc
    assert REGISTRY.revert(name) == 1
    assert fw.fit is original
    assert REGISTRY.patched(name) == []


@pytest.mark.parametrize("attribute", ["method", "cmethod", "smethod"])
def test_apply_descriptors_own_attribute(attribute, name):
    class Model(Base):
        def method(self, a, b=2):
            """Own method doc."""
            return ("own", a, b)

        @classmethod
        def cmethod(cls, a):
            """Own class method doc."""
            return ("owncm", cls.__name__, a)

        @staticmethod
        def smethod(a, *, k=0):
            """Own static doc."""
            return ("ownsm", a, k)

    raw = Model.__dict__[attribute]
    bound = getattr(Model(), attribute)
    sig, doc, qual_name = inspect.signature(bound), bound.__doc__, bound.__name__
    expected_cls = getattr(Model, attribute)(1) if attribute != "method" else None
    hits: list = []
    REGISTRY.apply(name, Model, attribute, _count(hits))
    patched = getattr(Model(), attribute)
    assert inspect.signature(patched) == sig
    assert patched.__name__ == qual_name and patched.__doc__ == doc
    assert patched(1) == bound(1)
    if attribute != "method":
        assert getattr(Model, attribute)(1) == expected_cls  # called on the class too
    assert hits  # the wrapper ran
    REGISTRY.revert(name)
    assert Model.__dict__[attribute] is raw


@pytest.mark.parametrize("attribute", ["method", "cmethod", "smethod"])
def test_inherited_attribute_is_deleted_on_revert(attribute, name):
    assert attribute not in Child.__dict__
    inherited = inspect.getattr_static(Child, attribute)
    hits: list = []
    REGISTRY.apply(name, Child, attribute, _count(hits))
    assert attribute in Child.__dict__
    assert getattr(Child(), attribute)(5)[0] == attribute and hits
    assert getattr(Base(), attribute)(5)[0] == attribute and len(hits) == 1  # Base is untouched
    REGISTRY.revert(name)
    assert attribute not in Child.__dict__
    assert inspect.getattr_static(Child, attribute) is inherited


def test_apply_twice_is_a_noop_and_reverts_nest(fw, name):
    original = fw.fit
    hits: list = []
    first = REGISTRY.apply(name, fw, "fit", _count(hits))
    assert REGISTRY.apply(name, fw, "fit", _count(hits)) is None
    other = f"{name}b"
    try:
        REGISTRY.apply(other, fw, "fit", _count(hits))
        fw.fit(1)
        assert len(hits) == 2  # two integrations, each wraps once
        REGISTRY.revert(other)
        assert fw.fit is first
    finally:
        REGISTRY.revert(other)
    REGISTRY.revert(name)
    assert fw.fit is original


def test_revert_leaves_a_patch_installed_on_top_of_ours(fw, name):
    original = fw.fit
    ours_hits: list = []
    REGISTRY.apply(name, fw, "fit", _count(ours_hits))
    ours = fw.fit

    def theirs(*args, **kwargs):  # another library (or the user) wraps our wrapper
        return ("theirs", ours(*args, **kwargs))

    fw.fit = theirs
    safety.reset_warnings()
    with pytest.warns(AutologWarning, match=r"fit was replaced after autolog patched it"):
        assert REGISTRY.revert(name) == 1
    assert fw.fit is theirs  # not overwritten with the original
    assert REGISTRY.patched(name) == []
    fw.fit = original


def test_revert_of_the_lower_of_two_own_patches_does_not_warn(fw, name):
    original = fw.fit
    other = f"{name}b"
    REGISTRY.apply(name, fw, "fit", _count([]))
    REGISTRY.apply(other, fw, "fit", _count([]))
    top = fw.fit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        REGISTRY.revert(name)
    assert fw.fit is top
    REGISTRY.revert(other)
    assert fw.fit is not top
    fw.fit = original


# -- safe_wrapper ------------------------------------------------------------------------


def test_user_function_runs_once_with_user_args(fw, name):
    rec = Recorder()
    REGISTRY.apply(name, fw, "fit", rec.wrapper(name))
    assert fw.fit(3, 4, scale=5) == 19
    assert fw.calls == [(3, 4, 5)]
    assert rec.before_calls == [((3, 4), {"scale": 5})]
    assert rec.after_calls == [19]


def test_before_may_add_arguments(fw, name):
    def before(call):
        call.kwargs = {**call.kwargs, "scale": 10}
        call.state["seen"] = True
        return True

    seen = []
    REGISTRY.apply(name, fw, "fit", safe_wrapper(name, before, lambda call, r: seen.append((call.state, r))))
    assert fw.fit(1) == 11
    assert seen == [({"seen": True}, 11)]


def test_return_value_passes_through_untouched(name):
    sentinel = object()
    module = types.ModuleType("m")
    module.f = lambda: sentinel
    REGISTRY.apply(name, module, "f", Recorder().wrapper(name))
    assert module.f() is sentinel


def test_user_exception_passes_through_same_object(fw, name):
    err = KeyError("boom")

    def failing(x):
        fw.calls.append(x)
        raise err

    fw.fit = failing
    rec = Recorder()
    REGISTRY.apply(name, fw, "fit", rec.wrapper(name))
    with pytest.raises(KeyError) as info:
        fw.fit(1)
    assert info.value is err
    assert fw.calls == [1]
    assert rec.errors == [err] and rec.after_calls == []


def test_before_false_calls_straight_through(fw, name):
    rec = Recorder(log=False)
    REGISTRY.apply(name, fw, "fit", rec.wrapper(name))
    assert fw.fit(2) == 5
    assert len(rec.before_calls) == 1 and rec.after_calls == [] and fw.calls == [(2, 1, 2)]


def test_disabled_wrapper_does_not_call_before(fw, name):
    rec = Recorder()
    REGISTRY.apply(name, fw, "fit", safe_wrapper(name, rec.before, rec.after, enabled=lambda: False))
    assert fw.fit(2) == 5
    assert rec.before_calls == [] and fw.calls == [(2, 1, 2)]


@pytest.mark.parametrize("where", ["before", "after", "on_error"])
def test_our_exception_warns_once_when_not_strict(fw, name, monkeypatch, where):
    monkeypatch.setenv("AUTOLOG_STRICT", "0")
    monkeypatch.delenv("AUTOLOG_SILENT", raising=False)
    safety.reset_warnings()

    def broken(*_):
        raise RuntimeError("our bug")

    hooks = {"before": lambda call: True, "after": None, "on_error": None}
    hooks[where] = broken
    if where == "on_error":
        def failing(x):
            fw.calls.append(x)
            raise ValueError("user error")

        fw.fit = failing
    REGISTRY.apply(name, fw, "fit", safe_wrapper(name, hooks["before"], hooks["after"], hooks["on_error"]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(3):
            if where == "on_error":
                with pytest.raises(ValueError, match="user error"):
                    fw.fit(i)
            else:
                assert fw.fit(i) == i * 2 + 1
    ours = [w for w in caught if issubclass(w.category, AutologWarning)]
    assert len(ours) == 1 and "our bug" in str(ours[0].message) and name in str(ours[0].message)
    assert len(fw.calls) == 3  # the user's call ran every time, once


@pytest.mark.parametrize("where", ["before", "after"])
def test_our_exception_raises_when_strict(fw, name, monkeypatch, where):
    monkeypatch.setenv("AUTOLOG_STRICT", "1")

    def broken(*_):
        raise RuntimeError("our bug")

    before = broken if where == "before" else (lambda call: True)
    after = broken if where == "after" else None
    REGISTRY.apply(name, fw, "fit", safe_wrapper(name, before, after))
    with pytest.raises(RuntimeError, match="our bug"):
        fw.fit(1)
    # The inside-marker was reset: a later call still logs.
    rec = Recorder()
    REGISTRY.revert(name)
    REGISTRY.apply(name, fw, "fit", rec.wrapper(name))
    fw.fit(1)
    assert len(rec.before_calls) == 1


def test_only_outermost_call_logs_same_wrapper(name):
    calls = []

    def recurse(n):
        calls.append(n)
        return n if n == 0 else module.recurse(n - 1)

    module = types.ModuleType("m")
    module.recurse = recurse
    rec = Recorder()
    REGISTRY.apply(name, module, "recurse", rec.wrapper(name))
    assert module.recurse(3) == 0
    assert calls == [3, 2, 1, 0]
    assert rec.before_calls == [((3,), {})] and rec.after_calls == [0]


def test_only_outermost_call_logs_across_wrappers(fw, name):
    outer_rec, inner_rec = Recorder(), Recorder()
    other = f"{name}b"
    try:
        REGISTRY.apply(name, fw, "outer", outer_rec.wrapper(name))
        REGISTRY.apply(other, fw, "fit", inner_rec.wrapper(other))
        fw.outer(2)
        assert len(outer_rec.before_calls) == 1 and inner_rec.before_calls == []
        fw.fit(2)  # outside: the inner wrapper logs on its own
        assert len(inner_rec.before_calls) == 1
    finally:
        REGISTRY.revert(other)


def test_declined_call_does_not_silence_nested_calls(fw, name):
    outer_rec, inner_rec = Recorder(log=False), Recorder()
    other = f"{name}b"
    try:
        REGISTRY.apply(name, fw, "outer", outer_rec.wrapper(name))
        REGISTRY.apply(other, fw, "fit", inner_rec.wrapper(other))
        fw.outer(2)
        assert len(outer_rec.before_calls) == 1
        assert inner_rec.before_calls == [((2,), {})] and len(inner_rec.after_calls) == 1
    finally:
        REGISTRY.revert(other)


def test_reentrancy_state_is_per_thread(fw, name):
    rec = Recorder()
    results = []

    def outer(x):
        fw.fit(x)  # same thread: nested, not logged
        t = threading.Thread(target=lambda: results.append(fw.fit(x + 1)))
        t.start()
        t.join()
        return x

    fw.outer = outer
    other = f"{name}b"
    outer_rec = Recorder()
    try:
        REGISTRY.apply(other, fw, "outer", outer_rec.wrapper(other))
        REGISTRY.apply(name, fw, "fit", rec.wrapper(name))
        fw.outer(1)
    finally:
        REGISTRY.revert(other)
    assert len(outer_rec.before_calls) == 1
    assert rec.before_calls == [((2,), {})]  # only the other thread's call logged itself
    assert results == [2 * 2 + 1]


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, True), ({"RANK": "0"}, True), ({"RANK": "1"}, False), ({"LOCAL_RANK": "0"}, True),
     ({"LOCAL_RANK": "2"}, False), ({"RANK": "0", "LOCAL_RANK": "3"}, True), ({"RANK": "junk"}, True)],
)
def test_is_rank_zero_reads_env(monkeypatch, env, expected):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert is_rank_zero() is expected


def test_non_zero_rank_calls_straight_through(fw, name, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    rec = Recorder()
    REGISTRY.apply(name, fw, "fit", rec.wrapper(name))
    assert fw.fit(1) == 3
    assert rec.before_calls == [] and fw.calls == [(1, 1, 2)]


def test_passthrough_guard_silences_nested_calls(fw, name):
    rec = Recorder()
    REGISTRY.apply(name, fw, "outer", passthrough_guard)
    REGISTRY.apply(name, fw, "fit", rec.wrapper(name))
    assert fw.outer(2) == 5 + 2
    assert rec.before_calls == []
    fw.fit(2)
    assert len(rec.before_calls) == 1


def test_patch_records_compare_by_value_and_print_their_fields(fw, name):
    REGISTRY.apply(name, fw, "fit", passthrough_guard)
    (patch,) = REGISTRY.patched(name)
    assert patch == REGISTRY.patched(name)[0] and patch != "fit"
    assert repr(patch).startswith(f"Patch(integration={name!r}, parent=") and "attribute='fit'" in repr(patch)
    with pytest.raises(TypeError):
        hash(patch)


def test_autolog_imports_neither_wrapt_nor_inspect_until_a_framework_is_patched(tmp_path):
    import os
    import subprocess

    # Which modules load (not a timing): wrapt imports inspect (~8 ms); a patch needs them, a hook does not.
    code = ("import sys, autolog\nautolog.autolog()\n"
            "print(sorted(m for m in ('inspect', 'dataclasses', 'wrapt', 'random', 'argparse') if m in sys.modules))\n"
            "import sklearn.linear_model as lm\n"
            "print(type(lm.LogisticRegression.__dict__['fit']).__name__, 'wrapt' in sys.modules)\n")
    env = {**os.environ, "AUTOLOG_URI": str(tmp_path / "store")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path, check=True)
    assert out.stdout.strip().splitlines()[-2:] == ["[]", "FunctionWrapper True"]
