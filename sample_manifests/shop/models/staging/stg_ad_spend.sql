select
    cast(spend_date as date) as spend_date,
    lower(channel) as channel,
    cast(spend_usd as decimal(12, 2)) as spend_usd
from {{ source('web', 'ad_spend') }}
