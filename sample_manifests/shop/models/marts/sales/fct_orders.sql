-- Built on ephemeral B (int_order_amounts), which reads ephemeral A
-- (int_orders_enriched), which reads staging. Incremental on order_id.
{{ config(materialized='incremental', unique_key='order_id', tags=['nightly']) }}

select
    order_id,
    customer_id,
    country_code,
    order_date,
    status,
    amount_usd,
    is_revenue
from {{ ref('int_order_amounts') }}
{% if is_incremental() %}
where order_date >= (select max(order_date) from {{ this }})
{% endif %}
