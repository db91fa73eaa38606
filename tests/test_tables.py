"""Text output of the ``autolog`` command: control characters in stored values are shown, never sent to the terminal."""

from __future__ import annotations

import sqlite3

import pytest

import autolog as al
from autolog.cli import commands as cli
from autolog.cli.tables import fmt_value, printable, table

RUN_OPTS = {"capture_env": False, "log_system_metrics": False}
EVIL = "a\x1b[2Jb\x07c\rd\x7fe\x9bf\u202eg\nh"


def test_printable_escapes_every_control_character():
    assert printable(EVIL) == "a\\x1b[2Jb\\x07c\\rd\\x7fe\\x9bf\\u202eg\\nh"
    assert printable("héllo 日本 ✓") == "héllo 日本 ✓"
    assert printable(printable(EVIL)) == printable(EVIL)
    assert fmt_value(EVIL) == printable(EVIL) and fmt_value(0.5) == "0.5"
    assert "\x1b" not in table(["k\x1b", "n"], [["v\x1b", 1]])


def _raw_controls(text: str) -> list[str]:
    return sorted({ch for ch in text if not ch.isprintable() and ch != "\n"})


@pytest.mark.parametrize("command", ["show", "compare", "ls"])
def test_cli_output_has_no_raw_control_characters(store, isolated_store, capsys, command):
    with al.start_run(name="one", **RUN_OPTS) as one:
        al.log_param("evil", EVIL)
        al.set_tag("note", EVIL)
        al.log_metric("loss", 0.5)
    with al.start_run(name="two", **RUN_OPTS) as two:
        al.log_param("evil", "plain")
        al.log_metric("loss", 0.4)
    al.flush()
    # A store written by someone else may hold what the API refuses (a name with ESC).
    with sqlite3.connect(isolated_store / "runs.db") as conn:
        conn.execute("UPDATE runs SET name = ? WHERE id = ?", ("evil\x1b]0;title\x07name", one.id))
    capsys.readouterr()
    argv = {"show": ["show", one.id], "compare": ["compare", one.id, two.id], "ls": ["ls"]}[command]
    assert cli.main(["--store", str(isolated_store), *argv]) == 0
    out = capsys.readouterr().out
    assert _raw_controls(out) == []
    assert "\\x1b" in out
