-- Passes on the sample data. Fails on purpose when run with
--   dbt build --vars '{fail_test: true}'
-- so a failing test can be shown failing its task.
select *
from {{ ref('mkt_channel_spend') }}
where spend_usd <= 0
{% if var('fail_test', false) %}
    or true
{% endif %}
