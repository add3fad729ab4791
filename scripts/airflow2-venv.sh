#!/usr/bin/env bash
# Create or refresh a virtualenv with Apache Airflow 2.10 and the cncf-kubernetes provider
# (no dagfactory in it), used by tests/integration/airflow/test_airflow2.py to check that files generated with
# `airflow_version: "2"` load.
#   scripts/airflow2-venv.sh [VENV]      default VENV: .venv-airflow2 beside this repo
# Airflow's constraint files cannot be fetched here, so scripts/airflow2-constraints.txt pins
# a set that resolved from PyPI alone. A stamp keyed on both files skips work already done.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-$here/.venv-airflow2}
. "$here/scripts/venv-lib.sh"
constraints="$here/scripts/airflow2-constraints.txt"
inputs=("$here/scripts/airflow2-venv.sh" "$constraints" "$here/scripts/venv-lib.sh")
venv_is_current "$venv" airflow2 "${inputs[@]}" && exit 0
venv_create "$venv"
"$venv/bin/uv" pip install --quiet --python "$venv/bin/python" --constraint "$constraints" \
  "apache-airflow==2.10.5" \
  "apache-airflow-providers-cncf-kubernetes==10.10.0"
venv_mark "$venv" airflow2 "${inputs[@]}"
