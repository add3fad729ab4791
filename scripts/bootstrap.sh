#!/usr/bin/env bash
# Create or refresh a virtualenv with dagfactory installed (editable) and the given extras.
#   scripts/bootstrap.sh VENV [EXTRAS]      e.g. scripts/bootstrap.sh .venv test
# Re-running is cheap: a stamp file keyed on pyproject.toml skips work that is done.
set -euo pipefail
venv=${1:?usage: bootstrap.sh VENV [EXTRAS]}
extras=${2:-}
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/venv-lib.sh"
inputs=("$here/pyproject.toml" "$here/scripts/bootstrap.sh" "$here/scripts/venv-lib.sh")
venv_is_current "$venv" "dagfactory-${extras:-base}" "${inputs[@]}" && exit 0
venv_create "$venv"
spec="$here"
[ -n "$extras" ] && spec="$here[$extras]"
# dbt-core 1.12 pulls a parser whose install downloads a file from outside the registries.
# A constraint, not a requirement: extras without dbt (the generator alone) install no dbt-core.
constraints="$venv/.dagfactory-constraints.txt"
printf 'dbt-core<1.12\n' > "$constraints"
"$venv/bin/uv" pip install --quiet --python "$venv/bin/python" --constraint "$constraints" -e "$spec"
venv_mark "$venv" "dagfactory-${extras:-base}" "${inputs[@]}"
