"""Authorization policies and promotion gates (registry.policy)."""
