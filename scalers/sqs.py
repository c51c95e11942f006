"""The ``aws-sqs-queue`` scaler: an SQS queue's approximate depth from one GetQueueAttributes.

Keys and defaults follow KEDA's AWS SQS scaler: ``queueURL`` (required; a URL or a bare queue
name, resolved once with GetQueueUrl), ``awsRegion`` (required), ``queueLength`` (target, 5),
``activationQueueLength`` (0), ``scaleOnInFlight`` (true), ``scaleOnDelayed`` (false),
``awsEndpoint`` (another endpoint, e.g. moto or LocalStack) and ``identityOwner``. Depth is
``ApproximateNumberOfMessages``, plus ``...NotVisible`` (in flight) and ``...Delayed`` as set:
counting in-flight messages by default keeps a busy queue from scaling its workers away while
they still hold messages (kedacore/keda#1663).

Credentials are ``awsAccessKeyID`` + ``awsSecretAccessKey`` (+ ``awsSessionToken``) from auth, or
the standard AWS chain (environment, shared files, container or instance roles) when auth has
none. Role assumption (``awsRoleArn``) is not supported. Triggers with equal region, endpoint and
credentials share one aiobotocore client (and its connection pool).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import botocore.exceptions as boto_errors
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from yarl import URL

from scalers.base import ConfiguredScaler, ScalerContext, dns_safe_name
from scalers.clients import secret_digest
from scalers.depth import DEFAULT_TIMEOUT, DepthScaler, scrub_values
from scalers.errors import (
    AuthError,
    BadResponseError,
    BadResultError,
    ScalerError,
    UnavailableError,
)
from scalers.metadata import MetadataReader
from scalers.spec import TriggerSpec

if TYPE_CHECKING:
    from types_aiobotocore_sqs.client import SQSClient
    from types_aiobotocore_sqs.literals import QueueAttributeNameType
else:
    SQSClient = object

__all__ = ["SqsConfig", "SqsScaler"]

MAX_POOL_CONNECTIONS = 10
"""botocore's default: plenty for one GetQueueAttributes per trigger per polling interval."""

_AUTH_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "AccessDenied",
        "AccessDeniedException",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidSecurity",
    }
)
_XML_CODE = re.compile(r"<Code>([A-Za-z0-9.]+)</Code>")
_MISSING_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


def _queue(reader: MetadataReader) -> tuple[str | None, str]:
    """(URL or None for a bare name, queue name)."""
    key = "queueURL"
    expected = "an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME) or a queue name"
    value = reader.required_str(key, expected=expected).strip()
    if "://" not in value:
        if "/" in value:
            raise reader.error(key, value, expected)
        return None, value
    try:
        url = URL(value)
    except (ValueError, TypeError):
        raise reader.error(key, value, expected) from None
    name = url.path.rstrip("/").rsplit("/", 1)[-1]
    if url.scheme not in ("http", "https") or not url.host or not name:
        raise reader.error(key, value, expected)
    return value, name


@dataclass(frozen=True, slots=True, repr=False)
class SqsConfig:
    queue_name: str
    region: str
    queue_url: str | None = None
    queue_length: int = 5
    activation_queue_length: int = 0
    scale_on_in_flight: bool = True
    scale_on_delayed: bool = False
    endpoint: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    def __repr__(self) -> str:
        return f"SqsConfig(queue={self.queue_url or self.queue_name!r}, region={self.region!r})"

    @classmethod
    def parse(cls, spec: TriggerSpec, *, ignore: Collection[str] = ()) -> SqsConfig:
        meta = MetadataReader(spec.metadata, ignore=ignore)
        auth = MetadataReader(spec.auth, secret=True)
        queue_url, queue_name = _queue(meta)
        region = meta.required_str("awsRegion", expected="an AWS region such as eu-west-1")
        length = meta.int_("queueLength", default=5, minimum=1)
        activation = meta.int_("activationQueueLength", default=0, minimum=0)
        in_flight = meta.bool_("scaleOnInFlight", default=True)
        delayed = meta.bool_("scaleOnDelayed", default=False)
        endpoint = meta.optional_str("awsEndpoint")
        if endpoint is not None:
            try:
                valid = URL(endpoint).scheme in ("http", "https") and bool(URL(endpoint).host)
            except (ValueError, TypeError):
                valid = False
            if not valid:
                raise meta.error("awsEndpoint", endpoint, "an http(s) URL")
        owner = meta.optional_str("identityOwner")
        if owner is not None and owner not in ("pod", "operator"):
            raise meta.error("identityOwner", owner, "pod or operator")
        meta.unsupported("queueURLFromEnv", "Updraft resolves no pod environment")
        meta.unsupported("metricName", "removed in KEDA 2.12; names are generated")
        auth.unsupported(
            "awsRoleArn", "role assumption is not supported; give keys or use the chain"
        )
        key_id = auth.optional_str("awsAccessKeyID")
        secret = auth.optional_str("awsSecretAccessKey")
        token = auth.optional_str("awsSessionToken")
        if key_id is not None and secret is None:
            raise auth.error("awsSecretAccessKey", None, "a secret key with awsAccessKeyID")
        if secret is not None and key_id is None:
            raise auth.error("awsAccessKeyID", None, "an access key ID with awsSecretAccessKey")
        meta.reject_unknown()
        auth.reject_unknown()
        return cls(
            queue_name=queue_name,
            region=region,
            queue_url=queue_url,
            queue_length=length,
            activation_queue_length=activation,
            scale_on_in_flight=in_flight,
            scale_on_delayed=delayed,
            endpoint=endpoint,
            access_key_id=key_id,
            secret_access_key=secret,
            session_token=token,
        )


class SqsScaler(DepthScaler[SQSClient], ConfiguredScaler[SqsConfig]):
    type_name = "aws-sqs-queue"
    config_type = SqsConfig
    discard_on_unavailable = False  # botocore opens new connections as needed
    # AWS signs requests, so the secret key never travels; a session token travels as the
    # X-Amz-Security-Token value. Only such values are credentials: a short token must not
    # blank out "sqs", a region or a queue name wherever they appear in a message.
    redact = staticmethod(scrub_values)

    def __init__(self, config: SqsConfig, *, context: ScalerContext) -> None:
        self.config = config
        self._queue_url = config.queue_url
        attributes: list[QueueAttributeNameType] = ["ApproximateNumberOfMessages"]
        if config.scale_on_in_flight:
            attributes.append("ApproximateNumberOfMessagesNotVisible")
        if config.scale_on_delayed:
            attributes.append("ApproximateNumberOfMessagesDelayed")
        self._attributes = attributes
        where = f" at {config.endpoint}" if config.endpoint else ""
        super().__init__(
            context=context,
            target=float(config.queue_length),
            activation_target=float(config.activation_queue_length),
            metric_name=dns_safe_name(f"aws-sqs-{config.queue_name}"),
            timeout=DEFAULT_TIMEOUT,
            what=f"sqs queue {config.queue_name!r} in {config.region}{where}",
            secrets=(config.secret_access_key, config.session_token),
        )

    def client_key(self) -> Hashable:
        c = self.config
        credentials = secret_digest(c.access_key_id, c.secret_access_key, c.session_token)
        return ("aws-sqs", c.region, c.endpoint, credentials)

    async def open_client(self) -> SQSClient:
        c = self.config
        config = AioConfig(
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
            # The cache retries on the next polling interval; retrying here would only stretch
            # one measurement past its deadline.
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=MAX_POOL_CONNECTIONS,
        )
        creator = get_session().create_client(
            "sqs",
            region_name=c.region,
            endpoint_url=c.endpoint,
            aws_access_key_id=c.access_key_id,
            aws_secret_access_key=c.secret_access_key,
            aws_session_token=c.session_token,
            config=config,
        )
        return await creator.__aenter__()

    async def close_client(self, client: SQSClient) -> None:
        await client.__aexit__(None, None, None)

    async def depth(self, client: SQSClient) -> float:
        if self._queue_url is None:
            self._queue_url = (await client.get_queue_url(QueueName=self.config.queue_name))[
                "QueueUrl"
            ]
        reply = await client.get_queue_attributes(
            QueueUrl=self._queue_url, AttributeNames=self._attributes
        )
        found = reply.get("Attributes", {})
        total = 0
        for name in self._attributes:
            text = found.get(name)
            if text is None or not (text.isascii() and text.isdigit()):
                raise BadResultError(self.message(f"answer has no number for {name}"))
            total += int(text)
        return float(total)

    def translate(self, error: Exception) -> ScalerError | None:
        text = self.library_text(error)
        if isinstance(error, boto_errors.ClientError):
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            # An error body botocore could not parse leaves the HTTP status as the code.
            embedded = _XML_CODE.search(text)
            if embedded is not None and code.isascii() and code.isdigit():
                code = embedded.group(1)
                text = f"{code} (HTTP {status})"
            if code in _AUTH_CODES or status in (401, 403):
                return AuthError(self.message(f"credentials refused: {text}"), status=status)
            if code in _MISSING_CODES:
                return BadResponseError(self.message("queue does not exist"), status=status)
            return BadResponseError(self.message(text), status=status)
        if isinstance(error, boto_errors.NoCredentialsError | boto_errors.PartialCredentialsError):
            return AuthError(
                self.message(f"no usable AWS credentials in auth or the standard chain ({text})")
            )
        if isinstance(
            error,
            boto_errors.EndpointConnectionError
            | boto_errors.ConnectTimeoutError
            | boto_errors.ReadTimeoutError
            | boto_errors.HTTPClientError
            | OSError,
        ):
            return UnavailableError(self.message(f"unreachable ({text})"))
        if isinstance(error, boto_errors.BotoCoreError):
            return BadResponseError(self.message(text))
        return None
