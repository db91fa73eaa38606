"""Overhead benchmarks: ``python -m benchmarks [name ...]`` prints one table per benchmark.

Each benchmark is a module ``benchmarks/<name>.py`` that defines ``NAME``,
``DESCRIPTION`` and ``run(args) -> Table | list[Table]`` (see ``benchmarks.common``);
it is found by its file name, so adding a module is all it takes to register one.
Figures are medians or ratios taken side by side in one run, never timed assertions.
"""

from __future__ import annotations
