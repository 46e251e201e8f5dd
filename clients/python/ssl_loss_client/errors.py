"""The server's error answers as Python exceptions (API.md "Errors")."""


class LossServerError(Exception):
    """An error answer: {error: {code, message, path?}} with its HTTP status.

    `path` points into the request body, e.g. ['inputs', 'anchor', 1, 'shape'].
    `retry_after` is the server's Retry-After in seconds on 429 / 503, else None.
    """

    def __init__(self, status, code, message, path=None, retry_after=None, request_id=None):
        self.status = status
        self.code = code
        self.message = message
        self.path = list(path) if path is not None else None
        self.retry_after = retry_after
        self.request_id = request_id
        where = f' at {self.path}' if self.path else ''
        super().__init__(f'{status} {code}: {message}{where}')

    @classmethod
    def from_body(cls, status, body, retry_after=None, request_id=None):
        """From a decoded error body; a body that is not one becomes code 'http_<status>'."""
        err = body.get('error') if isinstance(body, dict) else None
        if isinstance(err, dict) and isinstance(err.get('code'), str):
            return cls(status, err['code'], str(err.get('message', '')), err.get('path'), retry_after, request_id)
        return cls(status, f'http_{status}', f'unexpected answer: {str(body)[:200]}', None, retry_after, request_id)
