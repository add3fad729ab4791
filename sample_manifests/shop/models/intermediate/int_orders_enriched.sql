-- Ephemeral A: orders joined to their customer. Inlined as a CTE wherever used.
{{ config(materialized='ephemeral') }}

select
    o.order_id,
    o.customer_id,
    c.country_code,
    o.order_date,
    o.status,
    o.amount_cents
from {{ ref('stg_orders') }} as o
join {{ ref('stg_customers') }} as c using (customer_id)
