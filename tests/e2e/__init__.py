"""End-to-end harness: run generated DAGs in real Airflow and compare with `dbt build`.

See ``harness.py`` (entry point ``run_e2e``) and the README.
"""
