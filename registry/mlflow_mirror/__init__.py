"""Mirror a deployment's revisions into aliases and tags of an MLflow registered model."""
