select id, txt from {{ ref('quotes') }}
