#!/usr/bin/env bash
# Create or refresh a virtualenv with dagfactory installed (editable) and the given extras.
#   scripts/bootstrap.sh VENV [EXTRAS]      e.g. scripts/bootstrap.sh .venv test
# Re-running is cheap: a stamp file keyed on pyproject.toml skips work that is done.
set -euo pipefail
venv=${1:?usage: bootstrap.sh VENV [EXTRAS]}
extras=${2:-}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
stamp="$venv/.dagfactory-${extras:-base}.stamp"
want=$(cat "$here/pyproject.toml" "$here/scripts/bootstrap.sh" | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
if [ ! -x "$venv/bin/uv" ]; then
  "$venv/bin/python" -m pip install --quiet uv
fi
spec="$here"
[ -n "$extras" ] && spec="$here[$extras]"
# dbt-core 1.12 pulls a parser whose install downloads a file from outside the registries.
"$venv/bin/uv" pip install --quiet --python "$venv/bin/python" -e "$spec" "dbt-core<1.12"
echo "$want" > "$stamp"
