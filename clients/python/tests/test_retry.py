"""Retries of refused requests (retry.py) against a scripted local HTTP server: Retry-After
honoured, backoff capped, non-idempotent steps not repeated. No loss server needed; sleeps are
recorded, not slept."""
import http.server
import random
import threading
import unittest

import msgpack

from ssl_loss_client import LossClient, LossServerError, RetryPolicy
from ssl_loss_client.retry import parse_retry_after

OK_ANSWER = {'loss': 1.5, 'terms': {}, 'grads': {}, 'meta': {'backend': 'fake', 'worker': 0}}


class Scripted(http.server.BaseHTTPRequestHandler):
    """Answers each request with the next (status, headers) of the server's script; then 200."""

    def _answer(self):
        length = int(self.headers.get('Content-Length') or 0)
        self.rfile.read(length)
        srv = self.server
        srv.seen.append((self.command, self.path))
        status, headers = srv.script.pop(0) if srv.script else (200, {})
        body = OK_ANSWER if status < 400 else {'error': {'code': 'overloaded' if status == 429 else 'not_ready', 'message': 'busy'}}
        data = msgpack.packb(body, use_bin_type=True)
        self.send_response(status)
        self.send_header('Content-Type', 'application/msgpack')
        self.send_header('Content-Length', str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_GET = do_PUT = _answer

    def log_message(self, *args):
        pass


class RetryAgainstScriptedServer(unittest.TestCase):
    def setUp(self):
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Scripted)
        self.httpd.script, self.httpd.seen = [], []
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}'
        self.sleeps = []

    def tearDown(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def client(self, **policy):
        return LossClient(self.url, retry=RetryPolicy(sleep=self.sleeps.append, rng=random.Random(0), **policy), timeout=10)

    def test_retry_after_seconds_are_waited_then_the_answer_returned(self):
        self.httpd.script = [(429, {'Retry-After': '2'}), (503, {'Retry-After': '0.5'})]
        r = self.client().nt_xent([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]])
        self.assertEqual(r.loss, 1.5)
        self.assertEqual(self.sleeps, [2.0, 0.5])
        self.assertEqual(len(self.httpd.seen), 3)

    def test_without_retry_after_backoff_doubles_with_jitter_up_to_the_cap(self):
        self.httpd.script = [(503, {})] * 5
        self.client(backoff=1.0, max_backoff=4.0).nt_xent([[1.0]], [[1.0]])
        caps = [1.0, 2.0, 4.0, 4.0, 4.0]
        self.assertEqual(len(self.sleeps), 5)
        for s, cap in zip(self.sleeps, caps):
            self.assertTrue(cap / 2 <= s <= cap, f'{s} outside [{cap / 2}, {cap}]')

    def test_gives_up_after_max_retries_with_the_servers_error(self):
        self.httpd.script = [(429, {'Retry-After': '1'})] * 4
        with self.assertRaises(LossServerError) as cm:
            self.client(max_retries=2).nt_xent([[1.0]], [[1.0]])
        e = cm.exception
        self.assertEqual((e.status, e.code, e.retry_after), (429, 'overloaded', 1.0))
        self.assertEqual(self.sleeps, [1.0, 1.0])
        self.assertEqual(len(self.httpd.seen), 3)

    def test_a_long_retry_after_is_capped(self):
        self.httpd.script = [(503, {'Retry-After': '3600'})]
        self.client(max_backoff=30).nt_xent([[1.0]], [[1.0]])
        self.assertEqual(self.sleeps, [30])

    def test_other_errors_are_not_retried(self):
        self.httpd.script = [(400, {})]
        with self.assertRaises(LossServerError) as cm:
            self.client().nt_xent([[1.0]], [[1.0]])
        self.assertEqual(cm.exception.status, 400)
        self.assertEqual(self.sleeps, [])

    def test_task_steps_that_update_are_not_retried_unless_asked(self):
        self.httpd.script = [(429, {'Retry-After': '1'})]
        with self.assertRaises(LossServerError):
            self.client().task_loss('t1', {'z': [[1.0]]})  # update defaults to the server's (true)
        self.assertEqual(self.sleeps, [])
        self.httpd.script = [(429, {'Retry-After': '1'})]
        self.assertEqual(self.client(retry_updates=True).task_loss('t1', {'z': [[1.0]]}, update=True).loss, 1.5)
        self.assertEqual(self.sleeps, [1.0])
        self.httpd.script = [(429, {'Retry-After': '1'})]
        self.assertEqual(self.client().task_loss('t1', {'z': [[1.0]]}, update=False).loss, 1.5)
        self.assertEqual(self.sleeps, [1.0, 1.0])
        self.assertEqual(self.httpd.seen[-1], ('POST', '/v1/tasks/t1/loss'))

    def test_task_creation_is_not_retried(self):
        self.httpd.script = [(503, {'Retry-After': '1'})]
        with self.assertRaises(LossServerError):
            self.client().create_task('cpc', {'num_input_channels': 4})
        self.assertEqual(self.sleeps, [])


class RetryPolicyUnits(unittest.TestCase):
    def test_parse_retry_after(self):
        self.assertEqual(parse_retry_after('5'), 5.0)
        self.assertEqual(parse_retry_after(' 1.5 '), 1.5)
        self.assertIsNone(parse_retry_after(None))
        self.assertIsNone(parse_retry_after('soon'))
        self.assertEqual(parse_retry_after('Wed, 21 Oct 2015 07:28:00 GMT'), 0.0)  # a date in the past

    def test_connection_errors_are_retried_for_idempotent_requests_only(self):
        closed = LossClient('http://127.0.0.1:9', retry=RetryPolicy(max_retries=2, sleep=lambda s: None), timeout=2)
        calls = []
        closed.retry.sleep = calls.append
        with self.assertRaises(Exception):
            closed.nt_xent([[1.0]], [[1.0]])
        self.assertEqual(len(calls), 2)
        calls.clear()
        with self.assertRaises(Exception):
            closed.task_loss('t', {'z': [[1.0]]}, update=True)
        self.assertEqual(calls, [])

    def test_bad_policies_are_refused(self):
        with self.assertRaisesRegex(ValueError, 'max_retries must be >= 0, got -1'):
            RetryPolicy(max_retries=-1)


if __name__ == '__main__':
    unittest.main()
