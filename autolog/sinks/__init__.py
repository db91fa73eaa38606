"""Exports and bridges to other tools: the TensorBoard export, MLflow sync, and the MLflow store plugin."""
