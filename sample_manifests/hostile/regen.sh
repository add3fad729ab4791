#!/usr/bin/env bash
# Regenerate sample_manifests/hostile/manifest.json with real dbt.
#   sample_manifests/hostile/regen.sh [--dbt PATH]     (or DBT=/path/to/dbt)
# See ../regen.sh, which does the work for every sample project.
set -euo pipefail
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../regen.sh" "$@" hostile
