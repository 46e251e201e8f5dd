"""StreamClient against a real server (SSL_LOSS_URL): pipelined requests answered by id, the
in-flight cap, per-frame errors that keep the connection, close."""
import threading
import unittest

import numpy as np

from ssl_loss_client import LossClient, LossServerError, StreamClient, StreamClosed
from support import api_key, array, fixtures, rel_close, rel_err_norm, server_url


class Stream(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = server_url(cls)
        cls.http = LossClient(cls.url, api_key())
        cls.rng = np.random.default_rng(3)

    def pairs(self, n, b=4, d=8):
        return [(self.rng.standard_normal((b, d)).astype(np.float32), self.rng.standard_normal((b, d)).astype(np.float32)) for _ in range(n)]

    def test_many_requests_in_flight_each_answered_with_its_own_result(self):
        work = self.pairs(12, b=32, d=128)  # big enough that answers take longer than a submit
        seen_in_flight = []
        with StreamClient(self.url, api_key(), max_in_flight=4) as s:
            futures = []
            for o1, o2 in work:
                futures.append(s.nt_xent(o1, o2, temperature=0.3))
                seen_in_flight.append(s.in_flight)
            results = [f.result(timeout=120) for f in futures]
            self.assertEqual(s.in_flight, 0)
        self.assertLessEqual(max(seen_in_flight), 4)
        self.assertGreaterEqual(max(seen_in_flight), 2, f'pipelined: {seen_in_flight}')
        for (o1, o2), r in zip(work, results):
            ref = self.http.nt_xent(o1, o2, temperature=0.3)
            self.assertTrue(rel_close(r.loss, ref.loss), f'{r.loss} vs {ref.loss}')
            self.assertLessEqual(rel_err_norm(r.grads['out_1'], ref.grads['out_1']), 1e-6)

    def test_a_large_answer_arrives_whole(self):
        # over 1 MiB the server sends the answer as WebSocket continuation frames (views of the
        # gradient memory); the client sees one message, identical to the HTTP answer
        o1, o2 = self.pairs(1, b=1024, d=160)[0]  # 1.3 MB of gradients
        with StreamClient(self.url, api_key()) as s:
            r = s.nt_xent(o1, o2).result(timeout=120)
        ref = self.http.nt_xent(o1, o2)
        self.assertEqual(r.loss, ref.loss)
        for k in ('out_1', 'out_2'):
            self.assertEqual(r.grads[k].shape, (1024, 160))
            np.testing.assert_array_equal(r.grads[k], ref.grads[k])

    def test_every_fixture_pipelined_through_one_connection(self):
        fx = fixtures()
        with StreamClient(self.url, api_key(), max_in_flight=8) as s:
            futures = [s.submit(f['kind'], {k: [array(t) for t in v] if isinstance(v, list) else array(v) for k, v in f['request']['inputs'].items()},
                                f['request'].get('config'), {k: array(v) for k, v in (f['request'].get('params') or {}).items()},
                                f['request'].get('options')) for f in fx]
            for f, fut in zip(fx, futures):
                r = fut.result(timeout=120)
                self.assertTrue(rel_close(r.loss, f['expected']['loss']), f'{f["name"]}: {r.loss} vs {f["expected"]["loss"]}')

    def test_a_bad_frame_fails_alone_and_the_connection_stays(self):
        (o1, o2), = self.pairs(1)
        with StreamClient(self.url, api_key(), max_in_flight=3) as s:
            bad = s.nt_xent(o1, o2[:3])
            unknown = s.submit('simclr', {'out_1': o1})
            good = s.nt_xent(o1, o2)
            with self.assertRaises(LossServerError) as cm:
                bad.result(timeout=60)
            self.assertEqual((cm.exception.status, cm.exception.code, cm.exception.path), (400, 'shape_mismatch', ['inputs', 'out_2', 'shape']))
            with self.assertRaises(LossServerError) as cm:
                unknown.result(timeout=60)
            self.assertEqual((cm.exception.status, cm.exception.code), (404, 'unknown_kind'))
            self.assertGreater(good.result(timeout=60).loss, 0)
            self.assertGreater(s.nt_xent(o1, o2).result(timeout=60).loss, 0)

    def test_raw_results_and_map(self):
        work = self.pairs(3)
        with StreamClient(self.url, api_key()) as s:
            raw = s.submit('nt-xent', {'out_1': work[0][0], 'out_2': work[0][1]}, raw=True).result(timeout=60)
            self.assertEqual(raw['grads']['out_1']['dtype'], 'float32')
            results = s.map('nt-xent', [{'inputs': {'out_1': a, 'out_2': b}} for a, b in work])
        self.assertEqual(len(results), 3)
        self.assertTrue(rel_close(results[0].loss, raw['loss']))

    def test_close_fails_what_is_outstanding_and_refuses_more(self):
        (o1, o2), = self.pairs(1, b=64, d=256)
        s = StreamClient(self.url, api_key(), max_in_flight=8)
        futures = [s.nt_xent(o1, o2) for _ in range(8)]
        s.close()
        for f in futures:
            try:
                f.result(timeout=60)  # answered before the close, or failed by it: never left hanging
            except StreamClosed:
                pass
        with self.assertRaises(StreamClosed):
            s.nt_xent(o1, o2)

    def test_submit_from_several_threads(self):
        work = self.pairs(8)
        out = [None] * len(work)
        with StreamClient(self.url, api_key(), max_in_flight=2) as s:
            def run(i):
                out[i] = s.nt_xent(*work[i]).result(timeout=120).loss
            threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        for (o1, o2), loss in zip(work, out):
            self.assertTrue(rel_close(loss, self.http.nt_xent(o1, o2).loss))

    def test_exactly_one_of_kind_or_task(self):
        with StreamClient(self.url, api_key()) as s:
            with self.assertRaisesRegex(ValueError, 'exactly one of kind or task'):
                s.submit('nt-xent', {}, task='t')


if __name__ == '__main__':
    unittest.main()
