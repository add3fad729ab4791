# dagfactory as a CI step: `docker run --rm -v "$PWD:/work" -w /work dagfactory build --manifest target/manifest.json --out build/dags --push s3://bucket/dags/`
# The image holds the generator only (no Airflow, no dbt): it reads manifest.json, writes files and pushes them.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY dagfactory ./dagfactory
COPY templates ./templates
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /dist

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 dagfactory
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir "$(ls /tmp/*.whl)[s3]" && rm /tmp/*.whl
USER dagfactory
ENTRYPOINT ["dagfactory"]
CMD ["--help"]
