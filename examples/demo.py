"""The README's demo: run every example whose framework is installed, then show the runs.

Each example trains with autolog into the embedded default store (./autolog-runs or
$AUTOLOG_URI); at the end the `autolog` command lists, shows and compares the runs.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# example script -> the module it needs
EXAMPLES = [
    ("manual_example.py", None),
    ("sklearn_example.py", "sklearn"),
    ("sklearn_pipeline_search.py", "sklearn"),
    ("xgboost_example.py", "xgboost"),
    ("lightgbm_example.py", "lightgbm"),
    ("keras_example.py", "keras"),
    ("keras_custom_train_step.py", "keras"),
    ("lightning_example.py", "lightning"),
    ("lightning_gan.py", "lightning"),
    ("tensorboard_example.py", "torch"),
    ("unedited_script.py", "sklearn"),  # no autolog in it: run through `python -m autolog run`
]
# Examples that do not import autolog themselves: the command that runs them autologged.
UNEDITED = {"unedited_script.py": ["run", "--experiment", "zero-code", "--", "python", "{path}", "--trees", "40"]}


def _autolog(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "autolog.cli", *args], capture_output=True, text=True, check=True)
    return out.stdout


def main() -> int:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    ran = []
    for script, needs in EXAMPLES:
        path = os.path.join(HERE, script)
        if not os.path.exists(path) or (needs and importlib.util.find_spec(needs) is None):
            print(f"-- skipping {script} ({needs} not installed)" if needs else f"-- skipping {script}")
            continue
        print(f"== {script}", flush=True)
        command = [sys.executable, path]
        if script in UNEDITED:
            command = [sys.executable, "-m", "autolog", *(a.format(path=path) for a in UNEDITED[script])]
        result = subprocess.run(command)
        if result.returncode != 0:
            print(f"{script} failed with exit code {result.returncode}", file=sys.stderr)
            return result.returncode
        ran.append(script)
    print("\n== autolog ls")
    print(_autolog("ls", "--limit", "30"))
    fake = _autolog("ls", "--experiment", "fake-box", "--json")
    import json

    runs = json.loads(fake)
    if runs:
        print(f"== autolog show {runs[0]['id'][:8]}")
        print(_autolog("show", runs[0]["id"][:8]))
    if len(runs) >= 2:
        print("== autolog compare (the two fake-box runs)")
        print(_autolog("compare", runs[0]["id"][:8], runs[1]["id"][:8]))
    if "unedited_script.py" in ran:
        print("== autolog ls -e zero-code (a script run unedited through `autolog run`)")
        print(_autolog("ls", "-e", "zero-code", "-c", "params.n_estimators,tags.autolog.run_command,status"))
    print(f"ran {len(ran)} examples: {', '.join(ran)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
