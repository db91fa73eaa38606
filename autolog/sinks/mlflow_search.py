"""MLflow's run search syntax, translated into autolog's filter language.

MLflow parses the filter (its own parser, so its syntax errors read as usual); every
clause that has a meaning in ``autolog.store.query`` becomes one of ours and runs as SQL
in the store. The few that do not (``IN``, ``IS NULL``, tags MLflow derives from run
attributes) are checked on the converted runs with MLflow's own matcher, so results are
what a native MLflow store returns. What cannot be answered (datasets, ordering by
artifact URI) raises ``MlflowException`` naming the clause. Imported only by MLflow.
"""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.utils.search_utils import SearchUtils

from autolog.sinks.mlflow_batches import TAG_MAP

# MLflow attribute -> ours (autolog.store.query.ATTRIBUTES)
_ATTRIBUTES = {
    "run_id": "id", "run_name": "name", "status": "status", "user_id": "user",
    "start_time": "start_time", "created": "start_time", "Created": "start_time", "end_time": "end_time",
}
# MLflow tags that are run attributes in autolog
_TAG_ATTRIBUTES = {"mlflow.runName": "name", "mlflow.parentRunId": "parent_run_id"}
# MLflow tags made up from attributes or other tags when a run is shown (checked after the query)
DERIVED_TAGS = {"mlflow.user", "mlflow.source.name", "mlflow.source.type", "mlflow.log-model.history"}
_OURS = {mlflow_key: ours for ours, mlflow_key in TAG_MAP.items()}
_NUMERIC = {"start_time", "end_time"}


def not_supported(what: str) -> MlflowException:
    """The error for anything the autolog store cannot do."""
    return MlflowException(f"{what} is not supported by the autolog store", INVALID_PARAMETER_VALUE)


def _quote(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _number(value) -> str:
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        raise MlflowException(f"expected a number in the filter, got {value!r}", INVALID_PARAMETER_VALUE) from None


def _translate(clause: dict) -> str | None:
    """Our form of one parsed MLflow clause, or None when it must be checked after the query."""
    kind, key, op, value = clause["type"], clause["key"], clause["comparator"].upper(), clause["value"]
    if op in ("IN", "NOT IN", "IS NULL", "IS NOT NULL") or "`" in key:
        return None
    if kind == "metric":
        return f"metrics.`{key}` {op} {_number(value)}"
    if kind == "parameter":
        return f"params.`{key}` {op} {_quote(value)}"
    if kind == "attribute":
        ours = _ATTRIBUTES.get(key)
        if ours is None:
            return None
        literal = _number(value) if ours in _NUMERIC else _quote(value)
        return f"attributes.{ours} {op} {literal}"
    if kind == "tag":
        if key in _TAG_ATTRIBUTES:
            return f"attributes.{_TAG_ATTRIBUTES[key]} {op} {_quote(value)}"
        if key in DERIVED_TAGS:
            return None
        return f"tags.`{_OURS.get(key, key)}` {op} {_quote(value)}"
    raise not_supported(f"searching runs by {kind} ({kind}s.{key})")


def translate_filter(filter_string: str | None) -> tuple[str, list[dict]]:
    """``(our filter, clauses left to check on MLflow runs)`` for an MLflow filter string."""
    if not filter_string or not filter_string.strip():
        return "", []
    clauses = SearchUtils.parse_search_filter(filter_string)
    ours: list[str] = []
    rest: list[dict] = []
    for clause in clauses:
        text = _translate(clause)
        if text is None:
            rest.append(clause)
        else:
            ours.append(text)
    return " and ".join(ours), rest


def matches(run, clauses: list[dict]) -> bool:
    """Whether an MLflow ``Run`` meets every clause MLflow parsed (MLflow's own matcher)."""
    return all(SearchUtils._does_run_match_clause(run, clause) for clause in clauses)


def translate_order_by(order_by: list[str] | None) -> list[str]:
    """Our ``order_by`` list for MLflow's (``"metrics.loss DESC"``, ``"attributes.start_time"``)."""
    result = []
    for item in order_by or []:
        kind, key, ascending = SearchUtils.parse_order_by_for_search_runs(item)
        direction = "ASC" if ascending else "DESC"
        if kind == "attribute":
            ours = _ATTRIBUTES.get(key)
            if ours is None:
                raise not_supported(f"ordering runs by attributes.{key}")
            result.append(f"attributes.{ours} {direction}")
        elif kind == "tag" and key in _TAG_ATTRIBUTES:
            result.append(f"attributes.{_TAG_ATTRIBUTES[key]} {direction}")
        elif kind in ("metric", "parameter", "tag") and "`" not in key:
            entity = {"metric": "metrics", "parameter": "params", "tag": "tags"}[kind]
            result.append(f"{entity}.`{_OURS.get(key, key) if kind == 'tag' else key}` {direction}")
        else:
            raise not_supported(f"ordering runs by {item!r}")
    # MLflow breaks ties newest first, then by run id
    return result + ["attributes.start_time DESC"]
