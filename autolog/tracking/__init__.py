"""The fluent tracking API (start_run, log_metric, ...) and ActiveRun, the handle on one run being written."""
