-- Comment with ''' and """ and a backslash \ and {% raw %}{{ not_jinja }} {% if %}{% endraw %}
-- and __import__('os').system('echo pwned')
select
    1 as id,
    'it''s "quoted" \ ''' as txt
