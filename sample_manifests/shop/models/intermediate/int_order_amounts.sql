-- Ephemeral B: reads ephemeral A, so a mart built on it depends on staging only
-- through two ephemeral hops.
{{ config(materialized='ephemeral') }}

select
    order_id,
    customer_id,
    country_code,
    order_date,
    status,
    {{ cents_to_dollars('amount_cents') }} as amount_usd,
    status <> 'returned' as is_revenue
from {{ ref('int_orders_enriched') }}
