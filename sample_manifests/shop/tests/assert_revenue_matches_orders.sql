-- Singular test with two parents: revenue must equal the non-returned orders.
with orders as (
    select coalesce(sum(amount_usd), 0) as total
    from {{ ref('fct_orders') }}
    where status <> 'returned'
),

revenue as (
    select coalesce(sum(revenue_usd), 0) as total
    from {{ ref('fct_revenue') }}
)

select orders.total as orders_total, revenue.total as revenue_total
from orders cross join revenue
where orders.total <> revenue.total
