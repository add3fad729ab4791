-- Still on dim_customers v1: finance has not migrated yet.
select
    d.customer_id,
    d.full_name,
    d.order_count,
    coalesce(sum(r.revenue_usd), 0) as revenue_usd
from {{ ref('dim_customers', version=1) }} as d
left join {{ ref('fct_revenue') }} as r using (customer_id)
group by d.customer_id, d.full_name, d.order_count
