-- Disabled: kept to show how dbt records disabled nodes in the manifest.
{{ config(enabled=false) }}

select 1 as campaign_id
