"""Persistence: the run store (SQLite) and where each run's folder is. Below everything that
reads or writes runs."""
