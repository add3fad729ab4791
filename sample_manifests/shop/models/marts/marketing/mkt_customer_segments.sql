-- Unpinned ref: resolves to the latest version of dim_customers (v2).
select
    d.customer_id,
    d.region,
    case
        when d.lifetime_value_usd >= 100 then 'high'
        when d.lifetime_value_usd > 0 then 'low'
        else 'none'
    end as value_segment
from {{ ref('dim_customers') }} as d
join {{ ref('stg_countries') }} as c using (country_code)
