"""Integrations and ``autolog()``: post-import hooks, idempotence, disable, options, versions.

The framework is a plain module written to tmp_path and imported by the test; the
integration registered for it patches ``fit`` through the real engine.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import uuid
import warnings

import pytest

import autolog
from autolog import reporting as safety
from autolog.patching import activation, options, plugins
from autolog.patching.engine import REGISTRY, safe_wrapper
from autolog.patching.plugins import GROUP, Integration
from autolog.reporting import AutologWarning

FRAMEWORK_SOURCE = '''
def fit(x):
    """Fit."""
    return x * 2
'''


class Fake:
    """A fake framework on disk plus the Integration that patches it."""

    def __init__(self, tmp_path, monkeypatch, distribution: str = "", supported: str = ">=0") -> None:
        self.name = f"fake{uuid.uuid4().hex[:8]}"
        self.module = f"{self.name}_fw"
        (tmp_path / f"{self.module}.py").write_text(FRAMEWORK_SOURCE)
        monkeypatch.syspath_prepend(str(tmp_path))
        self.logged: list = []
        self.patch_calls = 0
        self.integration = Integration(
            name=self.name, module=self.module, distribution=distribution or f"{self.name}-dist",
            supported=supported, extra=self.name, patch=self._patch,
        )

    def _patch(self, module) -> None:
        self.patch_calls += 1

        def before(call):
            self.logged.append(call.args)
            return True

        REGISTRY.apply(self.name, module, "fit", safe_wrapper(self.name, before, enabled=self.integration.is_enabled))

    def import_module(self):
        return importlib.import_module(self.module)

    def cleanup(self) -> None:
        plugins.disable(self.integration)
        plugins.discover().pop(self.name, None)
        sys.modules.pop(self.module, None)


@pytest.fixture
def make_fake(tmp_path, monkeypatch):
    fakes: list[Fake] = []

    def make(**kwargs) -> Fake:
        fake = Fake(tmp_path, monkeypatch, **kwargs)
        plugins.register(fake.integration)
        fakes.append(fake)
        return fake

    yield make
    for fake in fakes:
        fake.cleanup()
    options.set_global({})


def test_hook_patches_module_imported_later(make_fake):
    fake = make_fake()
    assert fake.module not in sys.modules
    assert fake.name in autolog.autolog(only=[fake.name])
    assert fake.module not in sys.modules  # autolog() imported nothing
    assert fake.patch_calls == 0
    module = fake.import_module()
    assert fake.patch_calls == 1
    assert module.fit(3) == 6 and fake.logged == [(3,)]
    assert module.fit.__doc__ == "Fit."


def test_already_imported_module_is_patched_at_once(make_fake):
    fake = make_fake()
    module = fake.import_module()
    original = module.fit
    autolog.autolog(only=[fake.name])
    assert fake.patch_calls == 1 and module.fit is not original
    module.fit(1)
    assert fake.logged == [(1,)]


def test_autolog_twice_patches_once(make_fake):
    fake = make_fake()
    module = fake.import_module()
    autolog.autolog(only=[fake.name])
    autolog.autolog(only=[fake.name], log_models=False)
    assert fake.patch_calls == 1
    assert len(REGISTRY.patched(fake.name)) == 1
    module.fit(2)
    assert fake.logged == [(2,)]


def test_disable_restores_originals(make_fake):
    fake = make_fake()
    module = fake.import_module()
    original = module.fit
    autolog.autolog(only=[fake.name])
    assert module.fit is not original
    enabled = autolog.autolog(only=[fake.name], disable=True)
    assert fake.name not in enabled
    assert module.fit is original and not fake.integration.enabled
    assert REGISTRY.patched(fake.name) == []
    # Enabling again patches again.
    autolog.autolog(only=[fake.name])
    assert module.fit is not original and fake.patch_calls == 2


def test_disabled_hook_does_not_patch_on_later_import(make_fake):
    fake = make_fake()
    autolog.autolog(only=[fake.name])
    autolog.autolog(only=[fake.name], disable=True)
    module = fake.import_module()
    assert fake.patch_calls == 0 and module.fit(1) == 2 and fake.logged == []


def test_unknown_name_in_only_raises():
    with pytest.raises(ValueError, match="no_such_framework"):
        autolog.autolog(only=["no_such_framework"])
    with pytest.raises(TypeError):
        autolog.autolog(only=[3])


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [("log_every_n_steps", 0, ValueError), ("log_every_n_steps", True, ValueError),
     ("checkpoint", "sometimes", ValueError), ("extra_tags", [1], TypeError), ("log_models", "yes", TypeError),
     ("max_tuning_runs", -1, ValueError), ("checkpoint_monitor", 3, TypeError)],
)
def test_bad_option_raises_naming_it(option, value, error):
    with pytest.raises(error, match=option):
        autolog.autolog(**{option: value})
    assert not [i for i in plugins.discover().values() if i.enabled]  # nothing enabled


def test_unsupported_version_warns_once_and_patches(make_fake):
    safety.reset_warnings()
    fake = make_fake(distribution="pytest", supported="<0.1")
    module = fake.import_module()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        autolog.autolog(only=[fake.name])
        autolog.autolog(only=[fake.name], disable=True)
        autolog.autolog(only=[fake.name])
    ours = [w for w in caught if issubclass(w.category, AutologWarning)]
    assert len(ours) == 1
    message = str(ours[0].message)
    assert "pytest" in message and "<0.1" in message and "patched anyway" in message
    assert fake.patch_calls == 2
    module.fit(1)
    assert fake.logged == [(1,)]


def test_unsupported_version_skipped_when_asked(make_fake):
    safety.reset_warnings()
    fake = make_fake(distribution="pytest", supported="<0.1")
    module = fake.import_module()
    original = module.fit
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        autolog.autolog(only=[fake.name], disable_for_unsupported_versions=True)
    assert any("not patched" in str(w.message) for w in caught if issubclass(w.category, AutologWarning))
    assert fake.patch_calls == 0 and module.fit is original


def test_entry_points_list_builtins():
    names = dict(plugins.entry_points(GROUP))
    assert {"sklearn", "xgboost", "lightgbm", "keras", "lightning", "tensorboard"} <= set(names)
    for name in ("sklearn", "xgboost", "lightgbm", "keras", "lightning", "tensorboard"):
        assert names[name] == f"autolog.integrations.{name}:INTEGRATION"


def test_register_rejects_non_integration():
    with pytest.raises(TypeError):
        plugins.register(object())


@pytest.mark.parametrize("order", ["integration_first", "global_first"])
def test_per_integration_options_win(make_fake, order):
    fake = make_fake()
    if order == "integration_first":
        activation.enable_integration(fake.name, log_models=False)
        autolog.autolog(log_models=True, only=[fake.name])
    else:
        autolog.autolog(log_models=True, only=[fake.name])
        activation.enable_integration(fake.name, log_models=False)
    assert options.get(fake.name, "log_models") is False
    assert options.get("some_other", "log_models") is True
    activation.disable_integration(fake.name)
    assert options.get(fake.name, "log_models") is True  # disabling forgets the overrides


def test_enable_integration_unknown_name():
    with pytest.raises(ValueError, match="nope_fw"):
        activation.enable_integration("nope_fw")


def test_missing_framework_warns_and_stays_disabled(make_fake):
    safety.reset_warnings()
    fake = make_fake()
    fake.integration.module = f"{fake.name}_not_installed"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        enabled = autolog.autolog(only=[fake.name])
    assert fake.name not in enabled
    assert any(fake.integration.install_hint in str(w.message) for w in caught)


def test_failing_patch_is_reverted_and_raised_when_strict(make_fake):
    fake = make_fake()
    module = fake.import_module()
    original = module.fit

    def bad_patch(mod):
        fake._patch(mod)
        raise RuntimeError("patch bug")

    fake.integration.patch = bad_patch
    with pytest.raises(RuntimeError, match="patch bug"):
        autolog.autolog(only=[fake.name])
    assert module.fit is original  # the half-applied patch was undone


def test_autolog_imports_no_framework(tmp_path):
    heavy = ["torch", "sklearn", "keras", "xgboost", "lightgbm", "lightning", "mlflow", "tensorflow",
             "pytorch_lightning", "tensorboard"]
    code = (
        "import sys, json\n"
        "import autolog\n"
        "enabled = autolog.autolog()\n"
        f"print(json.dumps({{'enabled': enabled, 'loaded': [m for m in {heavy!r} if m in sys.modules]}}))\n"
    )
    env = {**os.environ, "AUTOLOG_URI": str(tmp_path / "store"), "AUTOLOG_STRICT": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
                         cwd=tmp_path, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    assert "sklearn" in result["enabled"]  # installed here, so enabled (hooked, not imported)


def test_builtin_framework_table_matches_the_integrations():
    # autolog() hooks these modules without importing the integrations: the table must say what they patch.
    for value in dict(plugins.entry_points(GROUP)).values():
        module_name = value.partition(":")[0]
        if module_name in plugins.BUILTIN_FRAMEWORKS:
            integration = importlib.import_module(module_name).INTEGRATION
            assert plugins.BUILTIN_FRAMEWORKS[module_name] == (integration.module, *integration.also_modules)
    assert set(plugins.BUILTIN_FRAMEWORKS) == {f"autolog.integrations.{n}" for n in
                                               ("sklearn", "xgboost", "lightgbm", "keras", "lightning", "tensorboard")}


def test_an_integration_module_loads_when_its_framework_is_imported(tmp_path):
    pytest.importorskip("sklearn", reason="pip install 'autolog[sklearn]'")
    code = (
        "import sys, json\n"
        "import autolog\n"
        "from autolog.patching.engine import REGISTRY\n"
        "ours = lambda: sorted(m for m in sys.modules if m.startswith('autolog.integrations.') and '._' not in m)\n"
        "enabled = autolog.autolog()\n"
        "before = ours()\n"
        "autolog.autolog(only=['xgboost'], disable=True)\n"
        "import sklearn.linear_model\n"
        "after = ours()\n"
        "patched = len(REGISTRY.patched('sklearn'))\n"
        "off = autolog.autolog(disable=True)\n"
        "print(json.dumps({'enabled': enabled, 'before': before, 'after': after, 'patched': patched, 'off': off,\n"
        "                  'restored': len(REGISTRY.patched('sklearn'))}))\n"
    )
    env = {**os.environ, "AUTOLOG_URI": str(tmp_path / "store"), "AUTOLOG_STRICT": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         cwd=tmp_path, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"sklearn", "xgboost"} <= set(result["enabled"])
    assert result["before"] == []  # enabled, hooked, nothing imported
    assert result["after"] == ["autolog.integrations.sklearn"]  # xgboost was disabled before its import: never loaded
    assert result["patched"] > 0 and result["off"] == [] and result["restored"] == 0


def test_entry_points_are_read_once_per_state_of_the_path_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    first = plugins.entry_points(GROUP)
    assert first == plugins._scan(GROUP) and dict(first)["sklearn"] == "autolog.integrations.sklearn:INTEGRATION"
    (cached,) = (tmp_path / "cache" / "autolog").glob("entry-points-*.txt")
    assert plugins.entry_points(GROUP) == first  # read back from the file
    # A distribution installed into a folder on sys.path changes that folder: it is seen at once.
    dist = site / "thirdparty_fw-1.0.dist-info"
    dist.mkdir()
    (dist / "entry_points.txt").write_text(f"[{GROUP}]\nthirdparty = thirdparty_fw.autolog:INTEGRATION\n")
    os.utime(site, ns=(os.stat(site).st_atime_ns, os.stat(site).st_mtime_ns + 10**9))
    again = plugins.entry_points(GROUP)
    assert dict(again)["thirdparty"] == "thirdparty_fw.autolog:INTEGRATION" and len(again) == len(first) + 1
    assert list((tmp_path / "cache" / "autolog").glob("entry-points-*.txt")) == [cached]  # rewritten, not multiplied


def test_import_autolog_loads_neither_inspect_nor_dataclasses(tmp_path):
    # Which modules a fresh `import autolog` loads (not a timing): inspect and dataclasses cost ~5 ms.
    code = "import sys, autolog\nprint(sorted(m for m in ('inspect', 'dataclasses', 'wrapt') if m in sys.modules))"
    env = {**os.environ, "AUTOLOG_URI": str(tmp_path / "store")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
