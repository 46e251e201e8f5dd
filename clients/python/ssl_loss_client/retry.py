"""When and how long to wait before sending a refused request again.

The server answers 429 `overloaded` and 503 `not_ready` / `worker_failed` / `timeout` with a
`Retry-After` header in seconds (docs/api-notes.md "Headers"). We wait what it says, else a
capped exponential backoff with jitter ("full jitter" of the AWS Architecture Blog,
"Exponential Backoff And Jitter", 2015, so that many trainers refused at once do not come
back at once). Only idempotent requests are retried unless the caller says otherwise: a
stateless loss can be asked twice, an optimizer step cannot (it would be applied twice if
the first one ran after all).
"""
import random
import time
from dataclasses import dataclass, field

RETRY_STATUSES = frozenset({429, 503})


@dataclass
class RetryPolicy:
    max_retries: int = 5
    """attempts after the first; 0 turns retries off"""
    backoff: float = 0.25
    """seconds of the first backoff; doubles per attempt"""
    max_backoff: float = 30.0
    """cap of one backoff and of an honoured Retry-After"""
    retry_updates: bool = False
    """also retry task steps that apply an optimizer update (not idempotent)"""
    retry_connection_errors: bool = True
    """retry idempotent requests whose connection failed before an answer"""
    sleep: callable = field(default=time.sleep, repr=False)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self):
        if self.max_retries < 0:
            raise ValueError(f'max_retries must be >= 0, got {self.max_retries}')
        if self.backoff < 0 or self.max_backoff < 0:
            raise ValueError(f'backoff ({self.backoff}) and max_backoff ({self.max_backoff}) must be >= 0')

    def delay(self, attempt, retry_after=None):
        """Seconds to wait before retry number `attempt` (0-based)."""
        seconds = parse_retry_after(retry_after)
        if seconds is not None:
            return min(seconds, self.max_backoff)
        cap = min(self.max_backoff, self.backoff * (2 ** attempt))
        return self.rng.uniform(cap / 2, cap)

    def should_retry(self, attempt, status=None, idempotent=True, connection_error=False):
        if attempt >= self.max_retries:
            return False
        if not idempotent and not self.retry_updates:
            return False
        if connection_error:
            return self.retry_connection_errors
        return status in RETRY_STATUSES


def parse_retry_after(value):
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None when absent or unreadable."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    import datetime
    now = datetime.datetime.now(when.tzinfo or datetime.timezone.utc)
    return max(0.0, (when - now).total_seconds())
