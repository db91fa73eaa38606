"""``autolog()`` and the per-integration ``autolog(...)``: options in, integrations switched on or off.

Validates the options, stores them (``options``), sets the process-wide switches (warnings,
redaction, environment capture) and enables the integrations through ``plugins``; with
``disable=True`` it reverts their patches and puts every option back to its default.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from autolog import secrets
from autolog.errors import InvalidName, InvalidType
from autolog.patching import options, plugins
from autolog.reporting import set_silent, warn_once


def autolog(
    *,
    only: Iterable[str] | None = None,
    disable: bool = False,
    exclusive: bool = False,
    silent: bool = False,
    log_models: bool = True,
    log_datasets: bool = True,
    log_every_n_steps: int = 1,
    extra_tags: dict[str, Any] | None = None,
    max_tuning_runs: int | None = 5,
    checkpoint: str | bool | None = None,
    checkpoint_monitor: str | None = None,
    log_post_training_metrics: bool = True,
    log_preprocessing: bool = False,
    disable_for_unsupported_versions: bool = False,
    capture_env: bool = True,
    log_system_metrics: bool = True,
    log_importance_plot: bool = False,
    redact: bool = True,
) -> list[str]:
    """Record every fit of every installed framework (or those in ``only``) from now on.

    Frameworks imported later are patched when they are imported. Calling it again
    updates the options without patching twice; ``disable=True`` restores every
    original attribute exactly, and (without ``only``) puts every option back to its default.

    Args:
        only: integration names (``"sklearn"``, ``"xgboost"``, ``"lightgbm"``, ``"keras"``,
            ``"lightning"``, ``"tensorboard"``); default all installed.
        disable: undo the patches (of ``only``, or of all).
        exclusive: log only into runs the user started.
        silent: no autolog warnings.
        log_models: save the trained model as an artifact.
        log_datasets: log dataset fingerprints (shape, dtype, digest).
        log_every_n_steps: log per-step metrics every n steps (the last is always logged).
        extra_tags: tags added to every run autolog creates.
        max_tuning_runs: child runs for the best candidates of a parameter search (None: every candidate).
        checkpoint: "best", "last", "all" or False/None (deep-learning and boosting integrations).
        checkpoint_monitor: the metric "best" follows (default val_loss, else loss).
        log_post_training_metrics: log ``model.score`` and ``sklearn.metrics`` results after fit.
        log_preprocessing: also log standalone preprocessing estimators (scalers, ...).
        disable_for_unsupported_versions: skip frameworks outside the tested version range.
        capture_env: capture git, pip and hardware on every run autolog creates.
        log_system_metrics: sample CPU/memory/GPU during runs autolog creates.
        log_importance_plot: also draw XGBoost/LightGBM feature importances as a PNG chart
            (off the training thread); ``feature_importance.json`` is always stored.
        redact: hide credentials in params, tags, command lines and syncs (``autolog.secrets``);
            False (or ``AUTOLOG_REDACT=0``) stores them as given.

    Returns:
        The names of the integrations that are enabled after the call.

    Raises:
        TypeError/ValueError: an unknown integration name or a bad option value.
    """
    opts = {
        "exclusive": exclusive, "silent": silent, "log_models": log_models, "log_datasets": log_datasets,
        "log_every_n_steps": log_every_n_steps, "extra_tags": extra_tags, "max_tuning_runs": max_tuning_runs,
        "checkpoint": checkpoint, "checkpoint_monitor": checkpoint_monitor,
        "log_post_training_metrics": log_post_training_metrics, "log_preprocessing": log_preprocessing,
        "disable_for_unsupported_versions": disable_for_unsupported_versions,
        "capture_env": capture_env, "log_system_metrics": log_system_metrics,
        "log_importance_plot": log_importance_plot, "redact": redact,
    }
    options.validate(opts)
    # Names only: an integration module is imported when its framework is (plugins.enable_name).
    known = plugins.names()
    names = _check_only(only, known)
    if disable:
        for name in names or known:
            disable_integration(name)
        if not names:  # everything off: no option of this session leaks into the next autolog()
            options.reset()
            set_silent(False)
            secrets.set_enabled(True)
            _configure_repro(True, True)
        return [n for n in plugins.names() if plugins.is_enabled(n)]
    options.set_global(opts)
    set_silent(silent)
    secrets.set_enabled(redact)
    _configure_repro(capture_env, log_system_metrics)
    for name in names or known:
        modules = plugins.framework_modules(name)
        if modules is None:  # its module failed to load (warned once)
            continue
        if not plugins.modules_available(modules):
            integration = plugins.get(name) if names else None
            if integration is not None:
                warn_once(f"missing:{name}", f"autolog: {integration.module} is not installed; {integration.install_hint}")
            continue
        plugins.enable_name(name)
    return [n for n in plugins.names() if plugins.is_enabled(n)]


def _check_only(only: Iterable[str] | None, known: list[str]) -> list[str]:
    if only is None:
        return []
    if isinstance(only, str):
        only = [only]
    names = list(only)
    for name in names:
        if not isinstance(name, str):
            raise InvalidType(f"only must list integration names (str), got {name!r}")
        if name not in known:
            raise InvalidName(f"unknown integration {name!r} in only=; known: {', '.join(sorted(known))}")
    return names


def _configure_repro(capture_env: bool, log_system_metrics: bool) -> None:
    # `import autolog` has imported seeding already (it registers the run-start capture).
    from autolog.capture import seeding

    seeding.configure(capture_env=capture_env, log_system_metrics=log_system_metrics)


def enable_integration(name: str, **opts: Any) -> bool:
    """Enable one integration with its own options (they win over ``autolog()``'s)."""
    integration = plugins.get(name)
    if integration is None:
        raise InvalidName(f"unknown integration {name!r}")
    disable_flag = opts.pop("disable", False)
    if disable_flag:
        disable_integration(name)
        return False
    options.set_for(name, opts)
    if "silent" in opts:
        set_silent(opts["silent"])
    if "redact" in opts:  # process-wide, like silent: the store redacts for every integration
        secrets.set_enabled(opts["redact"])
    plugins.enable(integration)
    return True


def disable_integration(name: str) -> None:
    """Disable one integration and restore its patched attributes (one never imported has none)."""
    plugins.disable_name(name)
