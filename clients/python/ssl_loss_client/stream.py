"""WebSocket stream client (API.md "WebSocket stream"): many evaluations over one connection,
several in flight at once.

Each request is one binary msgpack frame {id, kind | task, config, inputs, params, options};
each answer is one frame {id, ok, result | error}, in any order. `submit` returns a
concurrent.futures.Future; a background thread reads answers and resolves futures by id.
At most `max_in_flight` requests are outstanding: `submit` blocks until one is answered
(the server also stops reading a connection at its own per-connection cap).
"""
import itertools
import threading
from concurrent.futures import Future

import websocket

from .body import (DEFAULT, amdim_nce_args, common_options, cpc_args, evaluation_body, fmc_args, nt_xent_args,
                   pack, unpack)
from .errors import LossServerError
from .result import LossResult
from .retry import parse_retry_after


class StreamClosed(ConnectionError):
    """The connection ended before the request was answered."""


class StreamClient:
    """`StreamClient('http://host:8080', api_key=None, max_in_flight=8)`; http(s) URLs become ws(s)."""

    def __init__(self, url, api_key=None, *, max_in_flight=8, timeout=300.0, api_key_header='Authorization'):
        if max_in_flight < 1:
            raise ValueError(f'max_in_flight must be >= 1, got {max_in_flight}')
        base = url.rstrip('/')
        if base.startswith('http'):
            base = 'ws' + base[len('http'):]
        headers = []
        if api_key is not None:
            value = f'Bearer {api_key}' if api_key_header.lower() == 'authorization' else api_key
            headers.append(f'{api_key_header}: {value}')
        self.url = base + '/v1/stream'
        try:
            self._ws = websocket.create_connection(self.url, header=headers, timeout=timeout)
        except websocket.WebSocketBadStatusException as e:
            # refused upgrade (401 without a valid key, 404, 503 while draining): the API error body
            raise _handshake_error(e) from e
        self._ws.settimeout(None)  # the reader waits for answers as long as they take
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._ids = itertools.count()
        self._pending = {}
        self._lock = threading.Lock()
        self._closed = None  # the reason, once the connection is gone
        self._unreadable = []  # answers with id null (frames the server could not read)
        self._reader = threading.Thread(target=self._read, name='ssl-loss-stream-reader', daemon=True)
        self._reader.start()

    # -- sending --------------------------------------------------------------------------------

    def submit(self, kind=None, inputs=None, config=None, params=None, options=None, *, task=None, dtype=None, raw=False):
        """Sends one evaluation of `kind` (or of task instance `task`); returns a Future of a
        LossResult (raw=True: of the result map). Blocks while max_in_flight are outstanding."""
        if (kind is None) == (task is None):
            raise ValueError('give exactly one of kind or task')
        frame = evaluation_body(inputs or {}, config, params, options, dtype)
        self._slots.acquire()
        fut = Future()
        with self._lock:
            if self._closed is not None:
                self._slots.release()
                raise StreamClosed(f'stream closed: {self._closed}')
            frame_id = next(self._ids)
            self._pending[frame_id] = (fut, raw)
        frame['id'] = frame_id
        frame['kind' if kind is not None else 'task'] = kind if kind is not None else task
        try:
            self._ws.send_binary(pack(frame))
        except Exception as e:  # noqa: BLE001 - the connection broke: this request will never be answered
            self._finish(frame_id, exc=StreamClosed(f'send failed: {e}'))
            raise StreamClosed(f'send failed: {e}') from e
        return fut

    def feature_map_contrastive(self, anchor, positive, comparisons=DEFAULT, tclip=DEFAULT, bidirectional=DEFAULT, *,
                                pairs=None, locations=None, **kw):
        """As LossClient.feature_map_contrastive, returning a Future."""
        config, inputs, kind_opts = fmc_args(anchor, positive, comparisons, tclip, bidirectional, pairs, locations)
        return self._kind('feature-map-contrastive', config, inputs, kind_opts, kw)

    def amdim_nce(self, anchor, positive, tclip=DEFAULT, **kw):
        config, inputs, kind_opts = amdim_nce_args(anchor, positive, tclip)
        return self._kind('amdim-nce', config, inputs, kind_opts, kw)

    def nt_xent(self, out_1, out_2, temperature=DEFAULT, *, normalize=None, **kw):
        config, inputs, kind_opts = nt_xent_args(out_1, out_2, temperature, normalize)
        return self._kind('nt-xent', config, inputs, kind_opts, kw)

    def cpc(self, z, params=None, *, num_input_channels=None, target_dim=DEFAULT, embed_scale=DEFAULT,
            hidden_channels=DEFAULT, num_blocks=DEFAULT, step_weighting=DEFAULT, **kw):
        config, inputs, _ = cpc_args(z, num_input_channels, target_dim, embed_scale, hidden_channels, num_blocks, step_weighting)
        return self._kind('cpc', config, inputs, {}, kw, params)

    def task_loss(self, task_id, inputs, *, update=None, **kw):
        opts = common_options(kw.pop('gradients', True), kw.pop('param_grads', None), kw.pop('grad_dtype', None),
                              kw.pop('seed', None), update, extra=kw.pop('options', None))
        return self.submit(task=task_id, inputs=inputs, options=opts, **kw)

    def _kind(self, kind, config, inputs, kind_opts, kw, params=None):
        opts = common_options(kw.pop('gradients', True), kw.pop('param_grads', None), kw.pop('grad_dtype', None),
                              kw.pop('seed', None), extra=kind_opts)
        return self.submit(kind, inputs, config, params, opts, **kw)

    def map(self, kind, requests):
        """Evaluates many {inputs, config?, params?, options?} maps of one kind, pipelined;
        returns their results in the order given."""
        futures = [self.submit(kind, **r) for r in requests]
        return [f.result() for f in futures]

    # -- receiving ------------------------------------------------------------------------------

    def _read(self):
        reason = 'closed by the client'
        try:
            while True:
                data = self._ws.recv()
                if data is None or data == '' or data == b'':
                    reason = 'closed by the server'
                    break
                answer = unpack(data) if isinstance(data, (bytes, bytearray)) else None
                if not isinstance(answer, dict):
                    continue
                self._dispatch(answer)
        except websocket.WebSocketConnectionClosedException:
            reason = 'closed by the server' if self._closed is None else self._closed
        except Exception as e:  # noqa: BLE001 - any read failure ends the stream for every waiter
            reason = f'{type(e).__name__}: {e}' if self._closed is None else self._closed
        self._fail_all(reason)

    def _dispatch(self, answer):
        frame_id = answer.get('id')
        if answer.get('ok'):
            with self._lock:
                raw = self._pending.get(frame_id, (None, False))[1]
            result = answer.get('result') or {}
            try:
                value = result if raw else LossResult.from_answer(result)
            except Exception as e:  # noqa: BLE001 - a malformed answer fails its own request only
                self._finish(frame_id, exc=e)
                return
            self._finish(frame_id, value=value)
            return
        status = _STATUS.get((answer.get('error') or {}).get('code'), 400)
        exc = LossServerError.from_body(status, answer)
        if frame_id is None:
            self._unreadable.append(exc)
            return
        self._finish(frame_id, exc=exc)

    def _finish(self, frame_id, value=None, exc=None):
        with self._lock:
            entry = self._pending.pop(frame_id, None)
        if entry is None:
            return
        self._slots.release()
        if exc is not None:
            entry[0].set_exception(exc)
        else:
            entry[0].set_result(value)

    def _fail_all(self, reason):
        with self._lock:
            if self._closed is None:
                self._closed = reason
            pending = list(self._pending)
        for frame_id in pending:
            self._finish(frame_id, exc=StreamClosed(f'stream closed before the answer: {reason}'))

    @property
    def in_flight(self):
        with self._lock:
            return len(self._pending)

    def close(self):
        """Closes the connection; requests still outstanding fail with StreamClosed
        (the server cancels those still waiting for a worker)."""
        with self._lock:
            if self._closed is None:
                self._closed = 'closed by the client'
        try:
            self._ws.close()
        finally:
            self._reader.join(timeout=10)
            self._fail_all(self._closed)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _handshake_error(e):
    # resp_body and resp_headers are missing on older websocket-client (Debian bookworm's 1.2)
    body = getattr(e, 'resp_body', None) or b''
    try:
        decoded = unpack(body) if body[:1] not in (b'{', b'[') else __import__('json').loads(body)
    except Exception:  # noqa: BLE001 - not an API error body: keep the status line
        decoded = body.decode('utf8', 'replace')
    if not isinstance(decoded, dict) and e.status_code in (401, 403):
        decoded = {'error': {'code': 'unauthorized', 'message': f'the WebSocket upgrade was refused: {e}'}}
    headers = {k.lower(): v for k, v in (getattr(e, 'resp_headers', None) or {}).items()}
    return LossServerError.from_body(e.status_code, decoded, parse_retry_after(headers.get('retry-after')), headers.get('x-request-id'))


# Stream answers carry the error body without an HTTP status; the catalogue of API.md "Errors".
_STATUS = {
    'invalid_body': 400, 'invalid_tensor': 400, 'shape_mismatch': 400, 'non_finite': 400, 'invalid_config': 400,
    'unauthorized': 401, 'unknown_task': 404, 'unknown_kind': 404, 'not_found': 404, 'too_large': 413,
    'unsupported_media_type': 415, 'overloaded': 429, 'not_ready': 503, 'worker_failed': 503, 'timeout': 503,
    'internal': 500,
}
