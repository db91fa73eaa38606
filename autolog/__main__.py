"""``python -m autolog train.py ARGS`` runs a program autologged (as ``autolog run``);
``python -m autolog ls`` and every other sub-command work as the ``autolog`` command does."""

import os
import sys

from autolog.cli.commands import main

args = sys.argv[1:]
i = 0
while i < len(args) and args[i].startswith("--store"):  # global options come before the program
    i += 1 if "=" in args[i] else 2
if i < len(args) and (args[i].endswith(".py") or args[i] == "-m" or os.path.isfile(args[i])):
    args.insert(i, "run")
raise SystemExit(main(args))
