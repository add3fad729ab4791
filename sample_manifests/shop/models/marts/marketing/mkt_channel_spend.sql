select
    spend_date,
    channel,
    sum(spend_usd) as spend_usd
from {{ ref('stg_ad_spend') }}
group by spend_date, channel
