"""API keys (server/plugins/auth.ts: `Authorization: Bearer <key>` on every /v1 route and the
WebSocket upgrade) through LossClient, StreamClient and RemoteLoss. Needs a server started with
--api-keys and the keys in SSL_LOSS_API_KEY and SSL_LOSS_OTHER_KEY (test/clients/python.test.ts
does this); skipped with the reason otherwise."""
import os
import unittest

import numpy as np

from ssl_loss_client import LossClient, LossServerError, StreamClient
from support import server_url


class ApiKeys(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = server_url(cls)
        cls.key, cls.other = os.environ.get('SSL_LOSS_API_KEY'), os.environ.get('SSL_LOSS_OTHER_KEY')
        if not cls.key or not cls.other:
            raise unittest.SkipTest('SSL_LOSS_API_KEY and SSL_LOSS_OTHER_KEY are not set: the server under test has no API keys to check')
        cls.o1 = np.eye(3, 4, dtype=np.float32)
        cls.o2 = np.ones((3, 4), dtype=np.float32)

    def assertUnauthorized(self, fn, message):
        with self.assertRaises(LossServerError) as cm:
            fn()
        self.assertEqual((cm.exception.status, cm.exception.code), (401, 'unauthorized'))
        self.assertIn(message, cm.exception.message)

    def test_http_requires_a_valid_key(self):
        self.assertUnauthorized(lambda: LossClient(self.url).nt_xent(self.o1, self.o2), 'Authorization: Bearer')
        self.assertUnauthorized(lambda: LossClient(self.url, 'not-a-key').nt_xent(self.o1, self.o2), 'not valid')
        self.assertGreater(LossClient(self.url, self.key).nt_xent(self.o1, self.o2).loss, 0)
        self.assertTrue(LossClient(self.url).ready(), 'health stays open')

    def test_the_stream_upgrade_requires_a_valid_key(self):
        self.assertUnauthorized(lambda: StreamClient(self.url), 'Authorization: Bearer')
        self.assertUnauthorized(lambda: StreamClient(self.url, 'not-a-key'), 'not valid')
        with StreamClient(self.url, self.key) as s:
            self.assertGreater(s.nt_xent(self.o1, self.o2).result(timeout=60).loss, 0)

    def test_instances_belong_to_the_key_that_made_them(self):
        mine, theirs = LossClient(self.url, self.key), LossClient(self.url, self.other)
        info = mine.create_task('nt-xent', {'temperature': 0.5})
        try:
            self.assertEqual(mine.get_task(info['id'])['id'], info['id'])
            with self.assertRaises(LossServerError) as cm:
                theirs.get_task(info['id'])
            self.assertEqual((cm.exception.status, cm.exception.code), (404, 'unknown_task'))
            self.assertNotIn(info['id'], [t['id'] for t in theirs.list_tasks()])
        finally:
            mine.delete_task(info['id'])

    def test_the_torch_adapter_sends_the_key(self):
        try:
            import torch
            from ssl_loss_client import RemoteLoss
        except Exception as e:  # noqa: BLE001
            self.skipTest(f'torch does not import ({type(e).__name__}: {e})')
        x = torch.randn(3, 4, requires_grad=True)
        RemoteLoss(self.url, self.key).nt_xent(x, torch.randn(3, 4)).backward()
        self.assertEqual(x.grad.shape, (3, 4))
        self.assertUnauthorized(lambda: RemoteLoss(self.url).nt_xent(x, x), 'Authorization: Bearer')


if __name__ == '__main__':
    unittest.main()
