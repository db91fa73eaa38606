"""The ``autolog`` command: run tables, compare, plots, housekeeping and ``reproduce``."""
