-- One row per customer, names tidied.
select
    id as customer_id,
    first_name,
    last_name,
    first_name || ' ' || last_name as full_name,
    upper(country_code) as country_code,
    signup_date
from {{ ref('raw_customers') }}
