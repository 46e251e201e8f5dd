"""Python client of ssl-loss-server (Lightning Bolts' self-supervised losses as a service).

LossClient    HTTP: one method per loss kind, task instances, health (client.py)
StreamClient  WebSocket: many evaluations in flight on one connection (stream.py)
RemoteLoss    torch.autograd adapter (torch_adapter.py; imported on first use, torch optional)
"""
from .body import DEFAULT
from .client import LossClient
from .errors import LossServerError
from .result import LossResult
from .retry import RetryPolicy
from .stream import StreamClient, StreamClosed
from .tensors import from_wire, to_wire

__version__ = '0.1.0'
__all__ = ['DEFAULT', 'LossClient', 'LossResult', 'LossServerError', 'RemoteLoss', 'RetryPolicy', 'StreamClient',
           'StreamClosed', 'from_wire', 'to_wire']


def __getattr__(name):
    # torch is optional: importing the package must not import it
    if name == 'RemoteLoss':
        from .torch_adapter import RemoteLoss
        return RemoteLoss
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
