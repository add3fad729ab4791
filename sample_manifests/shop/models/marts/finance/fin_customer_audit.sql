-- Reads the snapshot. Only stable columns, so the result does not depend on
-- when the snapshot ran.
select
    id as customer_id,
    count(*) as snapshot_versions,
    bool_or(dbt_valid_to is null) as has_current_row
from {{ ref('customers_snapshot') }}
group by id
