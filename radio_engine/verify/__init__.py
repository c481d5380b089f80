"""The crash verifier: numbered events, killed workers, and a check that nothing was lost or
doubled (run.py orchestrates; plan.py and checks.py are plain functions)."""
