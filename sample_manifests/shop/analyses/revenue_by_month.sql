-- An analysis: compiled by dbt, never run. dagfactory should ignore it.
select revenue_month, sum(revenue_usd) as revenue_usd
from {{ ref('fct_revenue') }}
group by revenue_month
order by revenue_month
