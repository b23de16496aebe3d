"""Imports of PEFT adapters from an MLflow tracking server (``adapters import --from-mlflow``):
resolve the source over MLflow's REST API, fetch only the adapter's files, register them through
the usual validation path, and keep the run's metrics as evaluations with their provenance."""
