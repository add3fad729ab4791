#!/usr/bin/env bash
# Regenerate the committed manifest.json of the sample dbt projects with real dbt.
#
#   sample_manifests/regen.sh [--dbt PATH] [PROJECT ...]
#
# PROJECT is a folder name under sample_manifests/ (default: every folder that has a
# dbt_project.yml). The dbt executable is --dbt, else $DBT, else `dbt` on PATH; it
# needs dbt-core<1.12 and dbt-duckdb (e.g. `pip install 'dbt-core<1.12' dbt-duckdb`).
#
# dbt parses from inside the project folder with `--project-dir . --profiles-dir .`,
# so the paths dbt writes into the manifest (seed root_path, the shop source's CSV
# location) are relative and the file does not change from machine to machine
# (apart from generated_at and invocation_id). Target, logs and the DuckDB file go
# to a temporary directory that is removed afterwards; nothing is left in the tree.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dbt_bin="${DBT:-dbt}"
projects=()
while [ $# -gt 0 ]; do
    case "$1" in
        --dbt) dbt_bin="$2"; shift 2 ;;
        --dbt=*) dbt_bin="${1#--dbt=}"; shift ;;
        -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) projects+=("$1"); shift ;;
    esac
done
if [ ${#projects[@]} -eq 0 ]; then
    for f in "$here"/*/dbt_project.yml; do
        projects+=("$(basename "$(dirname "$f")")")
    done
fi
if ! command -v "$dbt_bin" >/dev/null 2>&1; then
    echo "regen.sh: dbt executable '$dbt_bin' not found (set DBT or pass --dbt)" >&2
    exit 2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Env vars read by the projects at parse time: unset them so the defaults land in
# the committed manifests.
unset SHOP_DATA_DIR DBT_PROFILES_DIR DBT_PROJECT_DIR DBT_TARGET_PATH DBT_LOG_PATH
export DBT_SEND_ANONYMOUS_USAGE_STATS=false

for project in "${projects[@]}"; do
    dir="$here/$project"
    if [ ! -f "$dir/dbt_project.yml" ]; then
        echo "regen.sh: $dir has no dbt_project.yml" >&2
        exit 2
    fi
    echo "== $project"
    (
        cd "$dir"
        DBT_DUCKDB_PATH="$tmp/$project.duckdb" "$dbt_bin" parse \
            --project-dir . --profiles-dir . \
            --target-path "$tmp/$project-target" --log-path "$tmp/$project-logs" \
            --no-partial-parse
    )
    cp "$tmp/$project-target/manifest.json" "$dir/manifest.json"
    echo "wrote $dir/manifest.json ($(wc -c <"$dir/manifest.json") bytes)"
done
