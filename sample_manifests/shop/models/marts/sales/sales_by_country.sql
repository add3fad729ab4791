-- Pins version 2 explicitly.
select
    country_code,
    region,
    count(*) as customers,
    sum(lifetime_value_usd) as lifetime_value_usd
from {{ ref('dim_customers', v=2) }}
group by country_code, region
