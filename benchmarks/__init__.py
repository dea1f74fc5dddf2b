"""mullui's benchmarks: ``python benchmarks/run.py`` runs them all and prints one table."""
