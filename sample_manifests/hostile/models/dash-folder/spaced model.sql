select id from {{ ref('dashed-model') }}
