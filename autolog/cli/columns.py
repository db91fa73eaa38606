"""The columns of ``autolog ls``: which ones, what they are called, and what fits the terminal.

A column is a qualified key: ``params.X``, ``metrics.X``, ``tags.X`` or an attribute
(``duration``, ``status``...). Users pick columns with ``-c`` (globs allowed); keys
used in ``--filter``/``--sort`` are added; without ``-c`` the headline metrics and the
params that differ are shown (see :mod:`autolog.store.selection`). Unknown keys are
reported with the closest existing ones instead of printing an empty column.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autolog.cli.tables import fmt_duration, fmt_time, fmt_value
from autolog.store import selection

if TYPE_CHECKING:
    from autolog.store.base import Run

ENTITIES = {
    "metrics": "metrics", "metric": "metrics", "m": "metrics",
    "params": "params", "param": "params", "parameters": "params", "p": "params",
    "tags": "tags", "tag": "tags", "t": "tags",
    "attributes": "attributes", "attribute": "attributes", "attr": "attributes", "run": "attributes",
}


@dataclass(frozen=True)
class Column:
    """One column: its qualified key, its header and how a run's value is read and shown."""

    key: str
    header: str
    get: Callable[[Any], Any]
    show: Callable[[Any], str] = fmt_value


def _duration(run: Run) -> int | None:
    return run.duration_ms


# name -> (header, getter, formatter); the names also work in --sort.
ATTRIBUTES: dict[str, tuple[str, Callable[[Any], Any], Callable[[Any], str]]] = {
    "id": ("id", lambda r: r.id, lambda v: v[:8]),
    "name": ("name", lambda r: r.name, str),
    "experiment": ("experiment", lambda r: r.experiment, str),
    "status": ("status", lambda r: r.status + ("*" if r.lifecycle == "deleted" else ""), str),
    "start_time": ("start", lambda r: r.start_time, fmt_time),
    "end_time": ("end", lambda r: r.end_time, fmt_time),
    "duration": ("duration", _duration, fmt_duration),
    "user": ("user", lambda r: r.user, str),
    "source": ("source", lambda r: r.source, str),
    "parent_run_id": ("parent", lambda r: r.parent_run_id, lambda v: (v or "")[:8]),
    "lifecycle": ("lifecycle", lambda r: r.lifecycle, str),
    "experiment_id": ("experiment_id", lambda r: r.experiment_id, str),
}
ATTRIBUTE_ALIASES = {"start": "start_time", "end": "end_time", "parent": "parent_run_id", "run_id": "id",
                     "run_name": "name", "started": "start_time"}


def attribute_name(word: str) -> str | None:
    """The attribute a column or sort word names (``start`` -> ``start_time``), or None."""
    word = word.lower()
    word = ATTRIBUTE_ALIASES.get(word, word)
    return word if word in ATTRIBUTES else None


def attribute_column(name: str) -> Column:
    header, get, show = ATTRIBUTES[name]
    return Column(f"attributes.{name}", header, get, show)


def key_column(entity: str, key: str) -> Column:
    """The column of ``params.key``, ``metrics.key`` or ``tags.key``; metrics are headed by the bare key."""
    if entity == "metrics":
        return Column(f"metrics.{key}", key, lambda r: r.metrics.get(key))
    if entity == "params":
        return Column(f"params.{key}", f"params.{key}", lambda r: r.params.get(key), lambda v: "" if v is None else v)
    return Column(f"tags.{key}", f"tags.{key}", lambda r: r.tags.get(key), lambda v: "" if v is None else v)


def split_key(spec: str) -> tuple[str | None, str]:
    """``"params.lr"`` -> ``("params", "lr")``; ``"val_loss"`` -> ``(None, "val_loss")``."""
    prefix, dot, rest = spec.partition(".")
    entity = ENTITIES.get(prefix.lower()) if dot else None
    if entity is None:
        return None, spec
    return entity, rest.strip("`")


def known_keys(runs: Sequence[Any]) -> dict[str, list[str]]:
    """Every key the runs have, per entity, sorted."""
    return {
        "metrics": sorted({k for r in runs for k in r.metrics}),
        "params": sorted({k for r in runs for k in r.params}),
        "tags": sorted({k for r in runs for k in r.tags}),
        "attributes": sorted(ATTRIBUTES),
    }


def closest(spec: str, known: dict[str, list[str]], n: int = 3) -> list[str]:
    """The existing qualified keys nearest to ``spec``, by the similarity of the bare keys (difflib).

    A key of the entity ``spec`` names ranks above an equally close key of another entity.
    """
    entity, bare = split_key(spec)
    scored = []
    for ent, keys in known.items():
        for key in keys:
            ratio = difflib.SequenceMatcher(None, bare.lower(), key.lower()).ratio()
            if entity is not None and ent != entity:
                ratio -= 0.05
            if ratio >= 0.6:
                scored.append((-ratio, f"{ent}.{key}"))
    return [q for _, q in sorted(scored)[:n]]


def unknown_message(spec: str, known: dict[str, list[str]], where: str = "the listed runs") -> str:
    near = closest(spec, known)
    hint = f"; closest: {', '.join(near)}" if near else ""
    return f"no key {spec!r} in {where}{hint}"


def resolve(specs: Sequence[str], runs: Sequence[Any], known: dict[str, list[str]] | None = None) -> tuple[list[Column], list[str]]:
    """Columns for ``specs`` (qualified keys, bare keys, attributes or globs); return ``(columns, warnings)``.

    A bare key is an attribute, else the metric, param or tag of that name (first found).
    A spec that matches nothing becomes a warning naming the closest existing keys.
    """
    known = known if known is not None else known_keys(runs)
    columns: list[Column] = []
    warnings: list[str] = []
    for spec in specs:
        entity, key = split_key(spec.strip())
        found = _match(entity, key, known)
        if not found:
            warnings.append(unknown_message(spec, known))
        for column in found:
            if column.key not in {c.key for c in columns}:
                columns.append(column)
    return columns, warnings


def _match(entity: str | None, key: str, known: dict[str, list[str]]) -> list[Column]:
    glob = any(ch in key for ch in "*?[")
    entities = [entity] if entity else ["attributes", "metrics", "params", "tags"]
    found: list[Column] = []
    for ent in entities:
        if ent == "attributes":
            if glob:
                found.extend(attribute_column(a) for a in fnmatch.filter(known["attributes"], key))
            elif (name := attribute_name(key)) is not None:
                found.append(attribute_column(name))
            continue
        names = fnmatch.filter(known[ent], key) if glob else [key] if key in known[ent] else []
        found.extend(key_column(ent, k) for k in names)
        if found and not glob and entity is None:
            break  # a bare key: the first entity that has it
    return found


def keys_in_filter(source: str | None) -> list[str]:
    """The qualified keys a filter mentions (``metrics.val_loss``, ``params.model``...), in order."""
    if not source:
        return []
    from autolog.store.query import tokenize

    try:
        tokens = tokenize(source)
    except ValueError:
        return []  # the search itself reports the malformed filter
    return [_normal(t.text) for t in tokens if t.kind == "entity" and split_key(t.text)[0] is not None]


def keys_in_sort(order_by: Sequence[str] | None) -> list[str]:
    """The qualified keys of ``--sort`` entries (``metrics.val_loss DESC`` -> ``metrics.val_loss``)."""
    out = []
    for item in order_by or []:
        words = item.strip().rsplit(None, 1)
        word = words[0] if len(words) == 2 and words[1].upper() in ("ASC", "DESC") else item.strip()
        out.append(_normal(word) if split_key(word)[0] else f"attributes.{attribute_name(word) or word}")
    return out


def normal_sort(order_by: Sequence[str] | None) -> list[str] | None:
    """``--sort`` entries with CLI names made store names: ``start`` -> ``start_time``."""
    if not order_by:
        return None
    out = []
    for item in order_by:
        words = item.strip().rsplit(None, 1)
        direction = ""
        if len(words) == 2 and words[1].upper() in ("ASC", "DESC"):
            item, direction = words[0], " " + words[1]
        entity, key = split_key(item.strip())
        if entity in (None, "attributes") and (name := attribute_name(key)) is not None:
            item = f"attributes.{name}"
        out.append(item.strip() + direction)
    return out


def _normal(text: str) -> str:
    entity, key = split_key(text)
    if entity == "attributes":
        key = attribute_name(key) or key
    return f"{entity}.{key}"


def default_columns(runs: Sequence[Any], max_metrics: int = 6) -> list[Column]:
    """Headline metrics, then every param that differs (see :mod:`autolog.store.selection`).

    Params are not capped here: what does not fit the terminal is left out by the table
    and named in its footer, never silently.
    """
    metrics = selection.headline_metrics(runs, max_metrics)
    params = selection.varying_params(runs)
    return [*(key_column("metrics", k) for k in metrics), *(key_column("params", k) for k in params)]
