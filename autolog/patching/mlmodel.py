"""The ``MLmodel`` file that makes every saved model folder an MLflow Model.

Written next to the model file and ``meta.json`` without importing mlflow (a training
process need not have it): the YAML follows MLflow's documented MLmodel format, with the
framework's MLflow flavor and ``python_function``, so ``mlflow.pyfunc.load_model(
"runs:/<id>/model")`` and MLflow's own loaders (``mlflow.sklearn.load_model``...) work on
the folder, locally through the ``autolog:`` store and after ``autolog sync``.
Lightning checkpoints have no MLflow flavor (MLflow's pytorch flavor needs a pickled
module); their ``python_function`` loader is ``autolog.sinks.mlflow_pyfunc``.
"""

from __future__ import annotations

import json
import os
from typing import Any

MLMODEL = "MLmodel"
# Types skops may rebuild on load without asking: the same roots the sklearn integration trusts.
_TRUSTED_ROOTS = ("sklearn", "numpy", "scipy", "builtins", "collections", "functools", "operator")
_DISTRIBUTIONS = {"sklearn": "scikit-learn", "xgboost": "xgboost", "lightgbm": "lightgbm", "keras": "keras"}


def _sklearn(folder: str, meta: dict) -> tuple[dict, dict]:
    fmt = meta.get("format", "pickle")
    flavor: dict[str, Any] = {"pickled_model": meta["file"], "serialization_format": fmt,
                              "sklearn_version": meta["versions"].get("scikit-learn"), "code": None}
    if fmt == "skops":
        import skops.io as sio  # already loaded: it wrote the file

        needed = sio.get_untrusted_types(file=os.path.join(folder, meta["file"]))
        flavor["skops_trusted_types"] = [t for t in needed if t.split(".")[0] in _TRUSTED_ROOTS] or None
    pyfunc = {"loader_module": "mlflow.sklearn", "model_path": meta["file"], "predict_fn": "predict"}
    return {"sklearn": flavor}, pyfunc


def _xgboost(folder: str, meta: dict) -> tuple[dict, dict]:
    # Saved from the Booster (also for XGBClassifier/XGBRegressor), so it loads as one.
    flavor = {"data": meta["file"], "model_class": "xgboost.core.Booster", "model_format": meta.get("format", "ubj"),
              "xgb_version": meta["versions"].get("xgboost"), "code": None}
    return {"xgboost": flavor}, {"loader_module": "mlflow.xgboost", "data": meta["file"]}


def _lightgbm(folder: str, meta: dict) -> tuple[dict, dict]:
    flavor = {"data": meta["file"], "model_class": "lightgbm.basic.Booster", "lgb_version": meta["versions"].get("lightgbm"), "code": None}
    return {"lightgbm": flavor}, {"loader_module": "mlflow.lightgbm", "data": meta["file"]}


def _keras(folder: str, meta: dict) -> tuple[dict, dict]:
    # MLflow's keras loader reads "<data>.keras": data "model" names model.keras in this folder.
    stem = meta["file"][: -len(".keras")] if meta["file"].endswith(".keras") else meta["file"]
    flavor = {"data": stem, "keras_backend": meta.get("backend"), "keras_version": meta["versions"].get("keras"),
              "save_exported_model": False}
    return {"keras": flavor}, {"loader_module": "mlflow.keras"}


def _lightning(folder: str, meta: dict) -> tuple[dict, dict]:
    return {}, {"loader_module": "autolog.sinks.mlflow_pyfunc", "data": meta["file"]}


_FLAVORS = {"sklearn": _sklearn, "xgboost": _xgboost, "lightgbm": _lightgbm, "keras": _keras, "lightning": _lightning}


def write_mlmodel(folder: str, meta: dict[str, Any]) -> str | None:
    """Write ``MLmodel`` (and ``requirements.txt``) into a saved model ``folder``; return its path.

    ``meta`` is the model's ``meta.json`` content (flavor, file, python, versions, format,
    class...). Flavors MLflow has no loader for get no MLmodel (None is returned).
    """
    import datetime
    import uuid

    build = _FLAVORS.get(meta.get("flavor", ""))
    if build is None:
        return None
    flavors, pyfunc = build(folder, meta)
    pyfunc["python_version"] = meta.get("python")
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files)
    spec = {
        "flavors": {**flavors, "python_function": pyfunc},
        "model_size_bytes": size,
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "metadata": {"autolog_flavor": meta.get("flavor"), "autolog_class": meta.get("class")},
    }
    path = os.path.join(folder, MLMODEL)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(to_yaml(spec))
    requirements = [f"{dist}=={version.split('+')[0]}" for dist, version in sorted(meta.get("versions", {}).items()) if version]
    if meta.get("flavor") == "lightning":
        requirements.append("autolog")
    with open(os.path.join(folder, "requirements.txt"), "w", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in requirements))
    return path


def to_yaml(data: Any, indent: int = 0) -> str:
    """Block-style YAML for nested dicts and lists of plain scalars (strings as JSON, a YAML subset)."""
    pad = "  " * indent
    lines = []
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, (dict, list)) and value:
                lines.append(f"{pad}{_scalar(str(key))}:\n{to_yaml(value, indent + 1)}")
            else:
                lines.append(f"{pad}{_scalar(str(key))}: {_scalar(value)}\n")
        return "".join(lines)
    for item in data:
        if isinstance(item, (dict, list)) and item:
            body = to_yaml(item, indent + 1)
            lines.append(f"{pad}- {body.lstrip()}")
        else:
            lines.append(f"{pad}- {_scalar(item)}\n")
    return "".join(lines)


def _scalar(value: Any) -> str:
    if value is None or value == {} or value == []:
        return "null" if value is None else ("{}" if value == {} else "[]")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    text = str(value)
    if text and text.replace("_", "").replace(".", "").replace("-", "").isalnum() and not text[0].isdigit() \
            and text.lower() not in ("null", "true", "false", "yes", "no", "on", "off", "y", "n", "~"):
        return text
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar
