-- Disabled: kept to show how dbt records disabled nodes in the manifest
-- (under manifest["disabled"], with its refs but no resolved depends_on).
{{ config(enabled=false) }}

select channel, count(*) as campaign_days
from {{ ref('mkt_channel_spend') }}
group by channel
