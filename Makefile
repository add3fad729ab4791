# The commands of this repository. Each one sets up what it needs (a virtualenv in .venv).
#   make demo    build the sample project's DAGs and push them to ./demo-bucket (file://);
#                installs the generator alone: no Airflow, no dbt, no boto3
#   make test    lint, then every test (real Airflow, real dbt, real S3 servers)
#   make test-fast   the unit layer only (tests/unit: in-process, no Airflow, no dbt, no server)
#   make golden  rewrite tests/golden/ from what the generator makes now (review the git diff)
#   make screenshot  regenerate docs/preview.png (the preview page in headless Chromium)
#   make bench   benchmarks, results in BENCHMARKS.md / bench/results.json / bench/dbt_task.json
VENV ?= .venv
PY := $(VENV)/bin/python
SAMPLE := sample_manifests/shop

.PHONY: demo test test-fast golden lint bench clean screenshot

demo:
	@scripts/bootstrap.sh $(VENV)
	$(VENV)/bin/dagfactory build --manifest $(SAMPLE)/manifest.json --out out/shop \
		--push file://$(CURDIR)/demo-bucket/

lint:
	@scripts/bootstrap.sh $(VENV) test
	$(VENV)/bin/ruff check dagfactory tests sample_manifests scripts
	$(VENV)/bin/ruff format --check dagfactory tests
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast:
	@scripts/bootstrap.sh $(VENV) test
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

golden:
	@scripts/bootstrap.sh $(VENV) test
	$(PY) -m pytest -q tests/unit/test_golden.py --update-golden

bench:
	@scripts/bootstrap.sh $(VENV) test
	$(PY) bench/dbt_task.py --sizes 500,2000 --out bench/dbt_task.json $(DBT_BENCH_ARGS)
	$(PY) bench/run.py $(BENCH_ARGS)

screenshot:
	@scripts/bootstrap.sh $(VENV) test
	DAGFACTORY_SCREENSHOT=docs/preview.png $(PY) -m pytest -q -p no:cacheprovider \
		tests/integration/test_preview_browser.py -k shop

clean:
	rm -rf out demo-bucket .bench
