# dagfactory as a CI step, run as the uid that owns the checkout and with the AWS settings passed on:
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" -w /work \
#     -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_SESSION_TOKEN -e AWS_REGION \
#     -e AWS_DEFAULT_REGION -e AWS_PROFILE -e AWS_ENDPOINT_URL \
#     dagfactory build --manifest target/manifest.json --out build/dags --push s3://bucket/dags/
# The image holds the generator only (no Airflow, no dbt): it reads manifest.json, writes files and
# pushes them. It needs no home of its own and writes nothing outside --out, so any uid works
# (docs/operations.md).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY dagfactory ./dagfactory
RUN pip install --no-cache-dir build==1.6.1 && python -m build --wheel --outdir dist

FROM python:3.11-slim
COPY --from=build /src/dist/*.whl /tmp/
RUN pip install --no-cache-dir "$(ls /tmp/*.whl)[s3]" && rm /tmp/*.whl
# A uid with no passwd entry (docker run --user) still gets a writable HOME for botocore.
ENV HOME=/tmp PYTHONDONTWRITEBYTECODE=1
USER 10001:0
WORKDIR /work
ENTRYPOINT ["dagfactory"]
CMD ["--help"]
