"""Our exception tree. Foreign errors are translated into it at exactly one boundary each.

::

    ModerationError
    ├── InvalidRequest            bad input from a caller (-> INVALID_ARGUMENT)
    │   ├── EmptyText
    │   ├── TextTooLong
    │   ├── UnknownJurisdiction
    │   └── BatchTooLarge
    ├── Overloaded                the service sheds load (-> RESOURCE_EXHAUSTED)
    ├── DeadlineExceeded          the caller's deadline passed (-> DEADLINE_EXCEEDED)
    ├── Unauthenticated           no key, or one we do not know (-> UNAUTHENTICATED)
    ├── PermissionDenied          a known client asked for what it may not (-> PERMISSION_DENIED)
    ├── Unavailable               not now, try again (-> UNAVAILABLE)
    │   ├── ShuttingDown          the server is stopping
    │   └── StreamIdle            a stream sent nothing for too long
    ├── ConfigError               settings, policy or lexicon files are wrong; refuses to start
    │   ├── PolicyError
    │   ├── LexiconError
    │   └── ScorerError           the scorer model file is missing, corrupt or foreign
    ├── DatasetError              a labelled dataset cannot be read (eval, train)
    └── ModelError                the model call failed (never reaches a caller: degrades)
        ├── ModelTimeout
        ├── ModelUnavailable      transport errors, 408/429/5xx after retries, breaker open
        ├── ModelRejected         400/401/402/403: retrying will not help
        └── ModelResponseError    malformed JSON, wrong schema, unknown category

This module imports nothing of ours and nothing of gRPC; the status code for each class is
decided in one table in ``moderation.rpc.interceptors``.
"""

from __future__ import annotations


class ModerationError(Exception):
    """Base of every error this package raises on purpose."""


class InvalidRequest(ModerationError):
    """A caller sent something we refuse; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.description = message

    def at(self, prefix: str) -> InvalidRequest:
        """The same error with ``prefix`` before the field, e.g. ``items[3].text``."""
        moved = type(self).__new__(type(self))
        InvalidRequest.__init__(moved, f"{prefix}.{self.field}", self.description)
        return moved


class EmptyText(InvalidRequest):
    """The text is empty or only white space."""


class TextTooLong(InvalidRequest):
    """The text is over the configured limit."""


class UnknownJurisdiction(InvalidRequest):
    """No policy is loaded for the requested jurisdiction."""


class BatchTooLarge(InvalidRequest):
    """More items than the batch limit."""


class Overloaded(ModerationError):
    """The service refuses work to protect its latency; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(ModerationError):
    """The caller's deadline passed while its items were still being screened."""


class Unauthenticated(ModerationError):
    """No key, or a key we do not know (-> UNAUTHENTICATED)."""


class PermissionDenied(ModerationError):
    """A known client asked for something it may not (-> PERMISSION_DENIED)."""


class Unavailable(ModerationError):
    """The call cannot be served now; the same call may succeed later or elsewhere."""


class ShuttingDown(Unavailable):
    """The server is stopping and takes no new calls."""


class StreamIdle(Unavailable):
    """A stream sent no request for the idle timeout while nothing was pending; closed."""


class ConfigError(ModerationError):
    """Configuration is wrong; the message names the file or variable, the key and the fix."""


class PolicyError(ConfigError):
    """A policy file is missing, malformed or refers to something unknown."""


class LexiconError(ConfigError):
    """A lexicon file is malformed or has entries its own normalizer cannot reach."""


class ScorerError(ConfigError):
    """A scorer model file is missing, corrupt, or made for another feature layout."""


class DatasetError(ModerationError):
    """A labelled dataset or verdict cache cannot be read as asked; the message says why."""


class ModelError(ModerationError):
    """The model call failed; the pipeline degrades instead of failing the request."""


class ModelTimeout(ModelError):
    """The model did not answer within the attempt timeout or the caller's deadline."""


class ModelUnavailable(ModelError):
    """The endpoint is unreachable or failing (after retries), or the breaker is open."""


class ModelRejected(ModelError):
    """The endpoint refused the request (400/401/402/403); a retry would get the same answer."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class ModelResponseError(ModelError):
    """The endpoint answered, but not with a verdict of the required shape."""
