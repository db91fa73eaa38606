"""The run filter language, compiled to SQL with bound parameters.

Grammar (case-insensitive keywords)::

    filter  := clause ( AND clause )*
    clause  := entity op literal
    entity  := (metrics|params|tags|attributes) "." key      key may be `back-quoted`
    op      := = | == | != | <> | < | <= | > | >= | LIKE | ILIKE | NOT LIKE
               (LIKE and NOT LIKE are case-sensitive, ILIKE is not; % and _ are wildcards)
    literal := number | 'text' | "text"

``metrics.X`` compares the latest value; ``params``/``tags`` compare text, or numbers
when the literal is a number and the operator is an ordering. Nothing from the filter
is pasted into SQL: keys and values are always bound parameters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from autolog.errors import InvalidFilter

_ENTITY_ALIASES = {
    "metrics": "metrics", "metric": "metrics",
    "params": "params", "param": "params", "parameters": "params",
    "tags": "tags", "tag": "tags",
    "attributes": "attributes", "attribute": "attributes", "attr": "attributes", "run": "attributes",
}
ATTRIBUTES = {
    "status": "run_status(r.status, r.host, r.pid, r.proc_start)",
    "name": "r.name", "run_name": "r.name",
    "id": "r.id", "run_id": "r.id",
    "start_time": "r.start_time", "end_time": "r.end_time",
    "user": "r.user", "source": "r.source",
    "experiment": "e.name", "experiment_id": "r.experiment_id",
    "parent_run_id": "r.parent_id", "parent": "r.parent_id",
    "lifecycle": "r.lifecycle",
    "duration": "(r.end_time - r.start_time)",  # ms; NULL while running, so running runs sort last
}
_NUMERIC_ATTRIBUTES = {"start_time", "end_time", "experiment_id", "duration"}

_TOKEN_PATTERN = (
    r"""
    (?P<space>\s+)
  | (?P<entity>[A-Za-z_]+\.(?:`[^`]+`|[A-Za-z0-9_\-./:]+))
  | (?P<op>==|!=|<>|<=|>=|=|<|>)
  | (?P<number>[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf|nan)(?![A-Za-z0-9_]))
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<word>[A-Za-z_]+)
    """
)
_token: re.Pattern | None = None


class Token:
    """One token of a filter (a plain class: ``dataclasses`` imports ``inspect``, ~7 ms at run start)."""

    __slots__ = ("kind", "text", "pos")

    def __init__(self, kind: str, text: str, pos: int) -> None:
        self.kind = kind
        self.text = text
        self.pos = pos

    def __repr__(self) -> str:
        return f"Token(kind={self.kind!r}, text={self.text!r}, pos={self.pos!r})"


def _error(source: str, pos: int, message: str) -> InvalidFilter:
    pointer = " " * pos + "^"
    return InvalidFilter(f"malformed filter at position {pos}: {message}\n  {source}\n  {pointer}")


def tokenize(source: str) -> list[Token]:
    """Split a filter into tokens; raise InvalidFilter at the first unknown character."""
    global _token
    if _token is None:  # compiled on first use: it costs milliseconds at import
        _token = re.compile(_TOKEN_PATTERN, re.VERBOSE | re.IGNORECASE)
    tokens: list[Token] = []
    pos = 0
    while pos < len(source):
        match = _token.match(source, pos)
        if match is None:
            raise _error(source, pos, f"unexpected text {source[pos:pos + 10]!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


def _split_entity(token: Token, source: str) -> tuple[str, str]:
    prefix, _, key = token.text.partition(".")
    entity = _ENTITY_ALIASES.get(prefix.lower())
    if entity is None:
        raise _error(source, token.pos, f"unknown entity {prefix!r}; use metrics., params., tags. or attributes.")
    if key.startswith("`"):
        key = key[1:-1]
    if entity == "attributes" and key.lower() not in ATTRIBUTES:
        raise _error(source, token.pos, f"unknown attribute {key!r}; known: {', '.join(sorted(ATTRIBUTES))}")
    return entity, key


def _literal(token: Token) -> str | float:
    if token.kind == "number":
        return float(token.text)
    body = token.text[1:-1]
    quote = token.text[0]
    return body.replace(quote * 2, quote).replace("\\" + quote, quote)


def _compare(column: str, op: str, value: str | float, numeric_column: bool) -> tuple[str, list]:
    if op in ("LIKE", "ILIKE", "NOT LIKE"):
        if not isinstance(value, str):
            raise ValueError(f"{op} needs a quoted pattern")
        if op == "ILIKE":
            return f"{column} LIKE ?", [value]
        # SQLite's LIKE ignores case; LIKE here is case-sensitive (ILIKE is not), so it
        # runs as GLOB with the pattern translated.
        return f"{column} {'NOT GLOB' if op == 'NOT LIKE' else 'GLOB'} ?", [_like_to_glob(value)]
    if numeric_column:
        if isinstance(value, str):
            raise ValueError(f"comparing a number with the text {value!r}")
        return f"{column} {op} ?", [value]
    if isinstance(value, float):
        if op in ("=", "!="):
            text = repr(int(value)) if value.is_integer() else repr(value)
            inner = f"({column} = ? OR ({column} GLOB '*[0-9]*' AND NOT {column} GLOB '*[^0-9.eE+-]*' AND CAST({column} AS REAL) = ?))"
            return (inner if op == "=" else f"NOT {inner}"), [text, value]
        return f"({column} GLOB '*[0-9]*' AND NOT {column} GLOB '*[^0-9.eE+-]*' AND CAST({column} AS REAL) {op} ?)", [value]
    return f"{column} {op} ?", [value]


def _like_to_glob(pattern: str) -> str:
    special = {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}
    return "".join(special.get(ch, ch) for ch in pattern)


def compile_filter(source: str | None) -> tuple[str, list]:
    """Compile a filter string into ``(sql_condition, bound_values)``; '' means no condition."""
    if source is None:
        return "", []
    if not isinstance(source, str):
        raise InvalidFilter(f"filter must be a str, got {type(source).__name__} {source!r:.80}")
    if not source.strip():
        return "", []
    tokens = tokenize(source)
    clauses: list[str] = []
    values: list = []
    i = 0
    while True:
        if i >= len(tokens):
            raise _error(source, len(source), "expected a clause such as metrics.loss < 0.3")
        ent = tokens[i]
        if ent.kind != "entity":
            raise _error(source, ent.pos, f"expected metrics.X, params.X, tags.X or attributes.X, got {ent.text!r}")
        entity, key = _split_entity(ent, source)
        i += 1
        if i >= len(tokens):
            raise _error(source, len(source), f"expected an operator after {ent.text!r}")
        op_tok = tokens[i]
        op = op_tok.text.upper()
        if op_tok.kind == "word" and op == "NOT" and i + 1 < len(tokens) and tokens[i + 1].text.upper() == "LIKE":
            op, i = "NOT LIKE", i + 1
        elif op_tok.kind == "op":
            op = {"==": "=", "<>": "!="}.get(op, op)
        elif op not in ("LIKE", "ILIKE"):
            raise _error(source, op_tok.pos, f"expected an operator (= != < <= > >= LIKE), got {op_tok.text!r}")
        i += 1
        if i >= len(tokens) or tokens[i].kind not in ("number", "string"):
            pos = tokens[i].pos if i < len(tokens) else len(source)
            raise _error(source, pos, f"expected a number or a quoted string after {op_tok.text!r}")
        lit = tokens[i]
        try:
            sql, binds = _clause(entity, key, op, _literal(lit))
        except ValueError as exc:
            raise _error(source, lit.pos, str(exc)) from None
        clauses.append(sql)
        values.extend(binds)
        i += 1
        if i == len(tokens):
            break
        conj = tokens[i]
        if conj.text.upper() != "AND":
            hint = " (only 'and' is supported)" if conj.text.upper() == "OR" else ""
            raise _error(source, conj.pos, f"expected 'and' between clauses, got {conj.text!r}{hint}")
        i += 1
    return " AND ".join(clauses), values


def _clause(entity: str, key: str, op: str, value: str | float) -> tuple[str, list]:
    if entity == "attributes":
        name = key.lower()
        if name in _NUMERIC_ATTRIBUTES and isinstance(value, str) and op not in ("LIKE", "ILIKE", "NOT LIKE"):
            raise ValueError(f"attribute {key} is a number; got the text {value!r}")
        sql, binds = _compare(ATTRIBUTES[name], op, value, name in _NUMERIC_ATTRIBUTES)
        if name == "status" and isinstance(value, str):
            binds = [v.upper() if isinstance(v, str) and op in ("=", "!=") else v for v in binds]
        return sql, binds
    if entity == "metrics":
        if op in ("LIKE", "ILIKE", "NOT LIKE"):
            raise ValueError("LIKE does not apply to metrics")
        if isinstance(value, str):
            raise ValueError(f"metrics compare with numbers, got the text {value!r}")
        sql, binds = _compare("m.value", op, value, True)
        return f"EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_id = r.id AND m.key = ? AND {sql})", [key, *binds]
    table = "params" if entity == "params" else "tags"
    sql, binds = _compare("x.value", op, value, False)
    return f"EXISTS (SELECT 1 FROM {table} x WHERE x.run_id = r.id AND x.key = ? AND {sql})", [key, *binds]


def compile_order_by(order_by: Sequence[str] | str | None) -> tuple[str, list]:
    """Compile ``["metrics.val_loss", "params.lr DESC"]`` to an ORDER BY body and binds."""
    if not order_by:
        return "r.start_time DESC, r.rowid DESC", []
    if isinstance(order_by, str):
        order_by = [order_by]
    parts: list[str] = []
    binds: list = []
    for item in order_by:
        if not isinstance(item, str) or not item.strip():
            raise InvalidFilter(f"order_by entries must be non-empty str, got {item!r}")
        words = item.strip().rsplit(None, 1)
        direction = "ASC"
        if len(words) == 2 and words[1].upper() in ("ASC", "DESC"):
            item, direction = words[0], words[1].upper()
        tokens = tokenize(item.strip())
        if len(tokens) != 1 or tokens[0].kind not in ("entity", "word"):
            raise InvalidFilter(f"order_by entry {item!r} must look like 'metrics.val_loss [ASC|DESC]'")
        tok = tokens[0]
        if tok.kind == "word":
            tok = Token("entity", "attributes." + tok.text, 0)
        entity, key = _split_entity(tok, item)
        if entity == "attributes":
            expr, expr_binds = ATTRIBUTES[key.lower()], []
        elif entity == "metrics":
            expr, expr_binds = "(SELECT m.value FROM latest_metrics m WHERE m.run_id = r.id AND m.key = ?)", [key]
        else:
            table = "params" if entity == "params" else "tags"
            expr, expr_binds = f"(SELECT x.value FROM {table} x WHERE x.run_id = r.id AND x.key = ?)", [key]
        # Runs without the value sort last either way; params sort as numbers where they are.
        parts.append(f"{expr} IS NULL")
        binds.extend(expr_binds)
        if entity in ("params", "tags"):
            parts.append(f"CAST({expr} AS REAL) {direction}")
            binds.extend(expr_binds)
        parts.append(f"{expr} {direction}")
        binds.extend(expr_binds)
    # Ties (runs started in the same millisecond) keep creation order, in the last key's direction.
    parts.append(f"r.rowid {direction}")
    return ", ".join(parts), binds
