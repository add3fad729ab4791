-- Version 2 of dim_customers (latest): adds region and lifetime value.
with revenue as (
    select customer_id, sum(amount_usd) as lifetime_value_usd
    from {{ ref('fct_orders') }}
    where is_revenue
    group by customer_id
)

select
    cast(c.customer_id as integer) as customer_id,
    cast(c.full_name as varchar) as full_name,
    cast(c.country_code as varchar) as country_code,
    cast(coalesce(co.order_count, 0) as bigint) as order_count,
    cast(cn.region as varchar) as region,
    cast(coalesce(r.lifetime_value_usd, 0) as decimal(12, 2)) as lifetime_value_usd
from {{ ref('stg_customers') }} as c
left join {{ ref('int_customer_orders') }} as co using (customer_id)
left join {{ ref('stg_countries') }} as cn using (country_code)
left join revenue as r using (customer_id)
