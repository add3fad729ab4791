{{ config(tags=['heavy']) }}

select
    order_id,
    customer_id,
    order_date,
    date_trunc('month', order_date) as revenue_month,
    amount_usd as revenue_usd
from {{ ref('fct_orders') }}
where is_revenue
