select
    id as order_id,
    customer_id,
    order_date,
    lower(status) as status,
    amount_cents
from {{ ref('raw_orders') }}
