#!/usr/bin/env bash
# Create or refresh a virtualenv with Apache Airflow 2.10 and the cncf-kubernetes provider
# (no dagfactory in it), used by tests/test_airflow2.py to check that files generated with
# `airflow_version: "2"` load.
#   scripts/airflow2-venv.sh [VENV]      default VENV: .venv-airflow2 beside this repo
# Airflow's constraint files cannot be fetched here, so scripts/airflow2-constraints.txt pins
# a set that resolved from PyPI alone. A stamp keyed on both files skips work already done.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-$here/.venv-airflow2}
python=${PYTHON:-python3}
constraints="$here/scripts/airflow2-constraints.txt"
stamp="$venv/.airflow2.stamp"
want=$(cat "$here/scripts/airflow2-venv.sh" "$constraints" | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
if [ ! -x "$venv/bin/uv" ]; then
  "$venv/bin/python" -m pip install --quiet uv
fi
"$venv/bin/uv" pip install --quiet --python "$venv/bin/python" --constraint "$constraints" \
  "apache-airflow==2.10.5" \
  "apache-airflow-providers-cncf-kubernetes==10.10.0"
echo "$want" > "$stamp"
