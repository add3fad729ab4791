{{ config(tags=['heavy', 'nightly']) }}

with revenue as (
    select revenue_month, sum(revenue_usd) as revenue_usd
    from {{ ref('fct_revenue') }}
    group by revenue_month
),

spend as (
    select date_trunc('month', spend_date) as revenue_month, sum(spend_usd) as spend_usd
    from {{ ref('mkt_channel_spend') }}
    group by 1
)

select
    coalesce(r.revenue_month, s.revenue_month) as revenue_month,
    coalesce(r.revenue_usd, 0) as revenue_usd,
    coalesce(s.spend_usd, 0) as spend_usd
from revenue as r
full outer join spend as s using (revenue_month)
