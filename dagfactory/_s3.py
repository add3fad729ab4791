"""The S3 publisher: the only module that imports boto3.

Every write is one ``PutObject`` carrying ``Content-MD5``: never ``upload_file`` or the transfer
manager, which switch to multipart uploads for big files, and a multipart ETag is not the MD5
that objinsync compares it with. Retries are botocore's "standard" mode (exponential backoff
with jitter on throttling, 5xx and connection errors). botocore errors are translated into
:class:`~dagfactory.errors.PublishError` here, at the boundary, raised ``from`` the original.

The state object is written with conditional ``PutObject`` (``If-None-Match: *`` to create,
``If-Match: <ETag>`` to replace). S3, moto_server 5.2 and SeaweedFS 4.48 answer a lost
condition with 412 PreconditionFailed (moto: 404 NoSuchKey for ``If-Match`` on a missing key;
S3: 409 ConditionalRequestConflict when two conditional writes race); all of them become
:class:`~dagfactory.errors.PushConflictError`.
"""

from __future__ import annotations

import os

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from dagfactory._publishers import RemoteObject, md5_of_etag
from dagfactory.errors import PublishError, PushConflictError

__all__ = ["DEFAULT_MAX_ATTEMPTS", "S3Publisher"]

#: Attempts per request (first try included) unless ``AWS_MAX_ATTEMPTS`` says otherwise.
#: With the timeouts below, an endpoint that accepts connections and never answers fails a
#: push in about a minute (it took 5 x 60 s): DAG files are small, a healthy store answers
#: a PUT in well under a second, and quick errors (503 SlowDown) are still retried.
DEFAULT_MAX_ATTEMPTS = 3
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 15


def _max_attempts() -> int:
    raw = os.environ.get("AWS_MAX_ATTEMPTS", "")
    try:
        return max(1, int(raw)) if raw else DEFAULT_MAX_ATTEMPTS
    except ValueError:
        return DEFAULT_MAX_ATTEMPTS


def _describe(exc: Exception) -> str:
    """One line a user can act on: the S3 error code and HTTP status, or the network error."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = err.get("Code") or "error"
        message = err.get("Message") or ""
        return f"{code} (HTTP {status}){': ' + message if message else ''}"
    if isinstance(exc, NoCredentialsError):
        return (
            "no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY, or run where an instance or pod role is available"
        )
    return str(exc)


class S3Publisher:
    """One bucket through boto3; endpoint, region and credentials from the AWS environment."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        max_pool_connections: int = 10,
    ) -> None:
        self.bucket = bucket
        config = Config(
            retries={"mode": "standard", "total_max_attempts": _max_attempts()},
            max_pool_connections=max(10, max_pool_connections),
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            # We send Content-MD5 ourselves; the newer CRC trailers are not needed and
            # some S3-compatible stores reject them.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        try:
            self.client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint_url, config=config
            )
        except BotoCoreError as exc:
            raise PublishError(f"cannot create an S3 client: {_describe(exc)}") from exc

    def _fail(self, action: str, key: str, exc: Exception) -> PublishError:
        return PublishError(f"{action} s3://{self.bucket}/{key} failed: {_describe(exc)}", key=key)

    def list(self, prefix: str) -> dict[str, RemoteObject]:
        found: dict[str, RemoteObject] = {}
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    found[obj["Key"]] = RemoteObject(md5_of_etag(obj.get("ETag")), obj["Size"])
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("listing", prefix, exc) from exc
        return found

    def get(self, key: str) -> bytes | None:
        got = self.read(key)
        return None if got is None else got[0]

    def read(self, key: str) -> tuple[bytes, str] | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            return response["Body"].read(), response["ETag"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._fail("reading", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("reading", key, exc) from exc

    def put(self, key: str, data: bytes, md5_b64: str, md5_hex: str) -> None:
        self._put(key, data, md5_b64, md5_hex, {})

    def swap(self, key: str, data: bytes, md5_b64: str, md5_hex: str, expected: str | None) -> str:
        condition = {"IfNoneMatch": "*"} if expected is None else {"IfMatch": expected}
        return self._put(key, data, md5_b64, md5_hex, condition)

    def _put(self, key: str, data: bytes, md5_b64: str, md5_hex: str, condition: dict) -> str:
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentMD5=md5_b64,
                ContentType="text/x-python" if key.endswith(".py") else "application/json",
                **condition,
            )
        except ClientError as exc:
            err = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            lost = status in (409, 412) or err.get("Code") in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
            )
            gone = "IfMatch" in condition and err.get("Code") in ("NoSuchKey", "404")
            if condition and (lost or gone):
                raise PushConflictError(
                    f"conditional write of s3://{self.bucket}/{key} lost: {_describe(exc)}",
                    key=key,
                ) from exc
            raise self._fail("uploading", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("uploading", key, exc) from exc
        etag = md5_of_etag(response.get("ETag"))
        if etag is not None and etag != md5_hex:
            raise PublishError(
                f"uploading s3://{self.bucket}/{key}: the store answered ETag {etag}, "
                f"expected the MD5 {md5_hex}",
                key=key,
            )
        return response.get("ETag") or f'"{md5_hex}"'

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("deleting", key, exc) from exc

    def sweep(self, prefix: str) -> None:
        """Nothing to clean: every PutObject is atomic and no multipart upload is started."""
