-- Version 1 of dim_customers: the original, narrow shape.
select
    cast(c.customer_id as integer) as customer_id,
    cast(c.full_name as varchar) as full_name,
    cast(c.country_code as varchar) as country_code,
    cast(coalesce(co.order_count, 0) as bigint) as order_count
from {{ ref('stg_customers') }} as c
left join {{ ref('int_customer_orders') }} as co using (customer_id)
