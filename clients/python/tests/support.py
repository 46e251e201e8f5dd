"""Shared helpers of the client tests: the server under test, the shared fixtures, tolerances.

SSL_LOSS_URL: base URL of a running server (test/clients/python.test.ts starts one and sets it).
SSL_LOSS_API_KEY / SSL_LOSS_OTHER_KEY: two keys the server accepts (test_auth.py), when it has keys.
SSL_LOSS_FIXTURES: the fixture folder (default ../shared/fixtures beside the repository).
"""
import glob
import json
import os
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..'))


def server_url(test):
    url = os.environ.get('SSL_LOSS_URL')
    if not url:
        raise unittest.SkipTest('SSL_LOSS_URL is not set: no server to test against (test/clients/python.test.ts starts one)')
    return url


def api_key():
    """SSL_LOSS_API_KEY: the key to send when the server under test has --api-keys."""
    return os.environ.get('SSL_LOSS_API_KEY') or None


def fixtures():
    folder = os.environ.get('SSL_LOSS_FIXTURES') or os.path.join(REPO, '..', 'shared', 'fixtures')
    files = sorted(glob.glob(os.path.join(folder, '*.json')))
    if not files:
        raise unittest.SkipTest(f'no fixtures in {folder} (set SSL_LOSS_FIXTURES)')
    out = []
    for f in files:
        with open(f) as fh:
            out.append(json.load(fh))
    return out


def array(t):
    """A JSON fixture tensor as float32 NumPy."""
    return np.array(t['data'], dtype=np.float32).reshape(t['shape'])


def rel_err_norm(got, ref):
    """||got - ref|| / max(||ref||, tiny): the gradient tolerance of LOSSES.md "Fixtures" (<= 1e-4)."""
    got = np.asarray(got, dtype=np.float64).ravel()
    ref = np.asarray(ref, dtype=np.float64).ravel()
    return float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30))


def rel_close(got, ref, rtol=1e-5, atol=1e-12):
    """The loss tolerance of test/helpers/fixtures.ts relClose."""
    return abs(got - ref) <= atol + rtol * abs(ref)
