"""S3, path-style, enough for uploads and downloads: CreateBucket, HeadBucket, PutObject, GetObject, HeadObject,
DeleteObject, ListObjectsV2. Personalize import jobs and Bedrock batch jobs read and write the same store."""

import base64
import hashlib
import re
import struct
import threading
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape

from werkzeug.wrappers import Request, Response

from awsemu.wire import AwsError, xml_response

FAULTS = {
    "throttle": ("SlowDown", 503, "Please reduce your request rate."),
    "timeout": ("RequestTimeout", 400, "Your socket connection to the server was not read from or written to "
                "within the timeout period."),
    "internal": ("InternalError", 500, "We encountered an internal error. Please try again."),
    "unavailable": ("ServiceUnavailable", 503, "Service is unable to handle request."),
}  # fmt: skip
NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_KEYS = 1000


@dataclass(frozen=True)
class S3Object:
    body: bytes
    content_type: str
    crc32: str = ""  # base64, as the client sent it in x-amz-checksum-crc32
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def etag(self) -> str:
        return f'"{hashlib.md5(self.body).hexdigest()}"'  # noqa: S324 - S3's ETag is an MD5, not a secret


class S3Store:
    """Buckets of objects in memory. Thread-safe; other emulated services use `read`, `write` and `keys`."""

    def __init__(self):
        self._lock = threading.Lock()
        self._buckets: dict[str, dict[str, S3Object]] = {}

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()

    # The S3 operations, as the server routes them.
    def create_bucket(self, bucket: str, region: str) -> Response:
        if not BUCKET_NAME.match(bucket):
            raise AwsError("InvalidBucketName", 400, "The specified bucket is not valid.")
        with self._lock:
            if bucket in self._buckets and region != "us-east-1":  # us-east-1 answers 200 for your own bucket
                raise AwsError("BucketAlreadyOwnedByYou", 409, "Your previous request to create the named bucket "
                               "succeeded and you already own it.")  # fmt: skip
            self._buckets.setdefault(bucket, {})
        return Response(status=200, headers={"Location": f"/{bucket}"})

    def head_bucket(self, bucket: str) -> Response:
        self._bucket(bucket)
        return Response(status=200)

    def put_object(self, bucket: str, key: str, request: Request) -> Response:
        body = request.get_data()
        crc = request.headers.get("x-amz-checksum-crc32", "")
        if crc and crc != crc32_of(body):
            raise AwsError("BadDigest", 400, "The CRC32 you specified did not match the calculated checksum.")
        obj = S3Object(body, request.headers.get("Content-Type") or "binary/octet-stream", crc)
        self.write_object(bucket, key, obj)
        headers = {"ETag": obj.etag, **({"x-amz-checksum-crc32": crc} if crc else {})}
        return Response(status=200, headers=headers)

    def get_object(self, bucket: str, key: str, request: Request) -> Response:
        """GetObject, and HeadObject too: the WSGI layer drops the body of a HEAD reply but keeps its length."""
        obj = self._object(bucket, key)
        headers = {"ETag": obj.etag, "Last-Modified": format_datetime(obj.modified, usegmt=True)}
        if obj.crc32 and request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
            headers["x-amz-checksum-crc32"] = obj.crc32
        return Response(obj.body, status=200, headers=headers, content_type=obj.content_type)

    def delete_object(self, bucket: str, key: str) -> Response:
        with self._lock:
            self._bucket_locked(bucket).pop(key, None)
        return Response(status=204)

    def list_objects_v2(self, bucket: str, request: Request) -> Response:
        args = request.args
        prefix, delimiter = args.get("prefix", ""), args.get("delimiter", "")
        max_keys = min(int(args.get("max-keys", MAX_KEYS)), MAX_KEYS)
        after = args.get("continuation-token") or args.get("start-after", "")
        with self._lock:
            objects = sorted(self._bucket_locked(bucket).items())
        contents, prefixes = [], []
        for key, obj in objects:
            if not key.startswith(prefix) or key <= after:
                continue
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                common = prefix + rest.split(delimiter, 1)[0] + delimiter
                if common not in prefixes:
                    prefixes.append(common)
                continue
            contents.append((key, obj))
        truncated = len(contents) > max_keys
        contents = contents[:max_keys]
        parts = [f"<Name>{bucket}</Name><Prefix>{escape(prefix)}</Prefix><KeyCount>{len(contents)}</KeyCount>",
                 f"<MaxKeys>{max_keys}</MaxKeys><IsTruncated>{str(truncated).lower()}</IsTruncated>"]  # fmt: skip
        parts += [_contents_xml(key, obj) for key, obj in contents]
        parts += [f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in prefixes]
        if truncated:
            parts.append(f"<NextContinuationToken>{escape(contents[-1][0])}</NextContinuationToken>")
        return xml_response(f'<ListBucketResult xmlns="{NAMESPACE}">{"".join(parts)}</ListBucketResult>')

    # For the other emulated services, which address objects by s3:// URI parts.
    def read(self, bucket: str, key: str) -> bytes:
        return self._object(bucket, key).body

    def write(self, bucket: str, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.write_object(bucket, key, S3Object(body, content_type))

    def write_object(self, bucket: str, key: str, obj: S3Object) -> None:
        with self._lock:
            self._bucket_locked(bucket)[key] = obj

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        with self._lock:
            return sorted(key for key in self._bucket_locked(bucket) if key.startswith(prefix))

    def _object(self, bucket: str, key: str) -> S3Object:
        with self._lock:
            obj = self._bucket_locked(bucket).get(key)
        if obj is None:
            raise AwsError("NoSuchKey", 404, "The specified key does not exist.")
        return obj

    def _bucket(self, bucket: str) -> dict[str, S3Object]:
        with self._lock:
            return self._bucket_locked(bucket)

    def _bucket_locked(self, bucket: str) -> dict[str, S3Object]:
        if bucket not in self._buckets:
            raise AwsError("NoSuchBucket", 404, "The specified bucket does not exist.")
        return self._buckets[bucket]


def crc32_of(body: bytes) -> str:
    return base64.b64encode(struct.pack(">I", zlib.crc32(body))).decode()


def _contents_xml(key: str, obj: S3Object) -> str:
    modified = obj.modified.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return (
        f"<Contents><Key>{escape(key)}</Key><LastModified>{modified}</LastModified>"
        f"<ETag>{escape(obj.etag)}</ETag><Size>{len(obj.body)}</Size><StorageClass>STANDARD</StorageClass></Contents>"
    )


OPERATIONS = {  # (method, has a key) -> operation
    ("PUT", False): "CreateBucket", ("HEAD", False): "HeadBucket", ("GET", False): "ListObjectsV2",
    ("PUT", True): "PutObject", ("GET", True): "GetObject", ("HEAD", True): "HeadObject",
    ("DELETE", True): "DeleteObject",
}  # fmt: skip


def operation_of(request: Request) -> tuple[str, str, str]:
    """(operation, bucket, key) for a path-style request; operation "" when S3 has none we emulate."""
    bucket, _, key = request.path.lstrip("/").partition("/")
    operation = OPERATIONS.get((request.method, bool(key)), "") if bucket else ""
    if operation == "ListObjectsV2" and request.args.get("list-type") != "2":
        operation = ""  # ListObjects (v1) and the bucket sub-resources are not emulated
    return operation, bucket, key
