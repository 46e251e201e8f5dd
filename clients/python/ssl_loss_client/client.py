"""HTTP client of ssl-loss-server: one method per loss kind, task instances, health.

Bodies are msgpack with tensors as little-endian bytes (API.md "Tensors"); answers are
decoded into NumPy. Refusals (429 / 503) are retried per `RetryPolicy` (retry.py).
"""
import requests

from .body import (DEFAULT, amdim_nce_args, common_options, cpc_args, evaluation_body, fmc_args,
                   nt_xent_args, pack, unpack)
from .errors import LossServerError
from .result import LossResult
from .retry import RetryPolicy, parse_retry_after

MSGPACK = 'application/msgpack'
OCTETS = 'application/octet-stream'


class LossClient:
    """`LossClient('http://host:8080', api_key=None)`.

    api_key is sent as `Authorization: Bearer <key>` (api_key_header='X-API-Key' sends it
    bare in that header instead). timeout: seconds per HTTP attempt (connect, read).
    retry: a RetryPolicy, or an int for RetryPolicy(max_retries=n).
    """

    def __init__(self, url, api_key=None, *, timeout=300.0, retry=None, session=None,
                 api_key_header='Authorization', headers=None):
        self.url = url.rstrip('/')
        self.timeout = timeout
        self.retry = retry if isinstance(retry, RetryPolicy) else RetryPolicy(**({} if retry is None else {'max_retries': retry}))
        self.session = session or requests.Session()
        self.headers = dict(headers or {})
        if api_key is not None:
            self.headers[api_key_header] = f'Bearer {api_key}' if api_key_header.lower() == 'authorization' else api_key
        self.api_key = api_key

    # -- plumbing -----------------------------------------------------------------------------

    def request(self, method, path, body=None, *, data=None, content_type=MSGPACK, accept=MSGPACK, idempotent=True):
        """Sends one request (retrying refusals) and returns the decoded answer, or bytes for
        application/octet-stream answers. Error answers raise LossServerError."""
        payload = pack(body) if body is not None else data
        headers = {**self.headers, 'Accept': accept}
        if payload is not None:
            headers['Content-Type'] = content_type
        attempt = 0
        while True:
            try:
                res = self.session.request(method, self.url + path, data=payload, headers=headers, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout):
                if not self.retry.should_retry(attempt, idempotent=idempotent, connection_error=True):
                    raise
                self.retry.sleep(self.retry.delay(attempt))
                attempt += 1
                continue
            if res.status_code < 400:
                return self._decode(res)
            retry_after = res.headers.get('Retry-After')
            if self.retry.should_retry(attempt, status=res.status_code, idempotent=idempotent):
                self.retry.sleep(self.retry.delay(attempt, retry_after))
                attempt += 1
                continue
            raise LossServerError.from_body(res.status_code, self._decode_error(res), parse_retry_after(retry_after),
                                            res.headers.get('X-Request-Id'))

    @staticmethod
    def _decode(res):
        kind = res.headers.get('Content-Type', '')
        if 'msgpack' in kind:
            return unpack(res.content)
        if 'json' in kind:
            return res.json()
        if res.status_code == 204 or not res.content:
            return None
        return res.content

    @classmethod
    def _decode_error(cls, res):
        try:
            return cls._decode(res)
        except Exception:  # noqa: BLE001 - an unreadable error body still becomes a LossServerError
            return res.text

    # -- stateless evaluations ----------------------------------------------------------------

    def evaluate(self, kind, inputs, config=None, params=None, options=None, *, dtype=None, raw=False):
        """POST /v1/loss/{kind}. inputs: name -> array / tensor (lists for feature maps).
        dtype forces the wire dtype of every tensor. raw=True returns the decoded answer map."""
        body = evaluation_body(inputs, config, params, options, dtype)
        answer = self.request('POST', f'/v1/loss/{kind}', body)
        return answer if raw else LossResult.from_answer(answer)

    def feature_map_contrastive(self, anchor, positive, comparisons=DEFAULT, tclip=DEFAULT, bidirectional=DEFAULT, *,
                                pairs=None, locations=None, seed=None, gradients=True, grad_dtype=None, dtype=None):
        """Bolts' FeatureMapContrastiveTask (AMDIM). anchor, positive: lists of M maps (b, c, h, w).
        pairs / locations replace the random draws (result.sampled reports the ones used)."""
        config, inputs, kind_opts = fmc_args(anchor, positive, comparisons, tclip, bidirectional, pairs, locations)
        opts = common_options(gradients, None, grad_dtype, seed, extra=kind_opts)
        return self.evaluate('feature-map-contrastive', inputs, config, None, opts, dtype=dtype)

    def amdim_nce(self, anchor, positive, tclip=DEFAULT, *, seed=None, gradients=True, grad_dtype=None, dtype=None):
        """Bolts' AmdimNCELoss: anchor (b, d), positive (d, b*L)."""
        config, inputs, kind_opts = amdim_nce_args(anchor, positive, tclip)
        return self.evaluate('amdim-nce', inputs, config, None, common_options(gradients, None, grad_dtype, seed, extra=kind_opts), dtype=dtype)

    def nt_xent(self, out_1, out_2, temperature=DEFAULT, *, normalize=None, gradients=True, grad_dtype=None, dtype=None):
        """SimCLR's nt_xent_loss: out_1, out_2 (b, d)."""
        config, inputs, kind_opts = nt_xent_args(out_1, out_2, temperature, normalize)
        return self.evaluate('nt-xent', inputs, config, None, common_options(gradients, None, grad_dtype, None, extra=kind_opts), dtype=dtype)

    def cpc(self, z, params=None, *, num_input_channels=None, target_dim=DEFAULT, embed_scale=DEFAULT,
            hidden_channels=DEFAULT, num_blocks=DEFAULT, step_weighting=DEFAULT, param_grads=False,
            gradients=True, grad_dtype=None, dtype=None):
        """Bolts' CPCTask on z (b, C, h, w). params: state_dict-named arrays (stateless form);
        num_input_channels defaults to z.shape[1]."""
        config, inputs, _ = cpc_args(z, num_input_channels, target_dim, embed_scale, hidden_channels, num_blocks, step_weighting)
        return self.evaluate('cpc', inputs, config, params, common_options(gradients, param_grads or None, grad_dtype), dtype=dtype)

    # -- task instances (API.md "Task instances") ----------------------------------------------

    def create_task(self, kind, config=None, *, seed=None, optimizer=None):
        """POST /v1/tasks -> {id, kind, config, step, params: [{name, shape}], optimizer}.
        optimizer: {'name': 'adam' | 'sgd', 'lr': ..., ...} (torch.optim's names and defaults)."""
        body = {'kind': kind, 'config': config or {}}
        if seed is not None:
            body['seed'] = seed
        if optimizer is not None:
            body['optimizer'] = optimizer
        # not idempotent: a retried create could make two instances
        return self.request('POST', '/v1/tasks', body, idempotent=False)

    def list_tasks(self):
        """GET /v1/tasks -> a list of task infos."""
        answer = self.request('GET', '/v1/tasks')
        return answer.get('tasks', answer) if isinstance(answer, dict) else answer

    def get_task(self, task_id):
        return self.request('GET', f'/v1/tasks/{task_id}')

    def delete_task(self, task_id):
        return self.request('DELETE', f'/v1/tasks/{task_id}')

    def task_loss(self, task_id, inputs, *, update=None, gradients=True, param_grads=None, grad_dtype=None,
                  seed=None, options=None, dtype=None):
        """POST /v1/tasks/{id}/loss with the instance's parameters; update=True (the server's
        default when the instance has an optimizer) also applies one optimizer step, so such a
        call is retried only with RetryPolicy(retry_updates=True)."""
        opts = common_options(gradients, param_grads, grad_dtype, seed, update, extra=options)
        body = evaluation_body(inputs, None, None, opts, dtype)
        answer = self.request('POST', f'/v1/tasks/{task_id}/loss', body, idempotent=update is False)
        return LossResult.from_answer(answer)

    def export_state(self, task_id, path=None, *, optimizer=None):
        """GET /v1/tasks/{id}/state: the parameters as safetensors bytes (optimizer=True: with the
        optimizer state, `optimizer.*` tensors), also written to `path` when given."""
        query = '' if optimizer is None else f'?optimizer={"true" if optimizer else "false"}'
        data = self.request('GET', f'/v1/tasks/{task_id}/state{query}', accept=OCTETS)
        if not isinstance(data, (bytes, bytearray)):
            raise LossServerError(200, 'unexpected_answer', f'state of task {task_id!r} is not application/octet-stream')
        if path is not None:
            with open(path, 'wb') as f:
                f.write(data)
        return bytes(data)

    def import_state(self, task_id, source):
        """PUT /v1/tasks/{id}/state from a safetensors file path or bytes."""
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
        else:
            with open(source, 'rb') as f:
                data = f.read()
        return self.request('PUT', f'/v1/tasks/{task_id}/state', data=data, content_type=OCTETS)

    # -- health ---------------------------------------------------------------------------------

    def ready(self):
        """GET /health/ready: True when the workers are up and warm."""
        try:
            self.session.get(self.url + '/health/ready', headers=self.headers, timeout=self.timeout).raise_for_status()
            return True
        except requests.RequestException:
            return False

    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
