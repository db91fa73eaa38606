"""Started by Python in every process of a program run through ``autolog run``.

``autolog run`` puts this folder first on ``PYTHONPATH``, so Python imports this file
at start-up in the program and in every Python subprocess it starts (DDP workers,
``torchrun``). It enables autolog as ``$AUTOLOG_BOOTSTRAP`` says, then hands over to any
``sitecustomize`` this one shadows, so a site's own start-up code still runs.
"""

import os
import sys


def _chain() -> None:
    # Import the sitecustomize that would have run without us (a virtualenv's or a distro's).
    here = os.path.dirname(os.path.abspath(__file__))
    module = sys.modules.pop("sitecustomize", None)
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    try:
        import sitecustomize  # noqa: F401
    except ImportError:
        pass
    finally:
        sys.path[:] = saved
        if module is not None:
            sys.modules["sitecustomize"] = module


def _start() -> None:
    if not os.environ.get("AUTOLOG_BOOTSTRAP"):
        return
    try:
        from autolog.cli.bootstrap import start

        start()
    except Exception as exc:  # a broken bootstrap must never stop the user's program
        if os.environ.get("AUTOLOG_STRICT") == "1":
            raise
        print(f"autolog: autolog run could not enable autologging: {exc!r}", file=sys.stderr)


_chain()
_start()
