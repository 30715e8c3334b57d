"""Benchmark scripts, their records (records.py), the runner (run.py) and the report (report.py)."""
