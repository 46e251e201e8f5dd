#!/usr/bin/env python3
"""Reference trajectories of torch.optim.Adam / torch.optim.SGD for test/tasks/optimizers.test.ts.

Reads JSON from stdin, a list of cases (one Python start for all: importing torch is slow):
  {"cases": [{"optimizer": {"name": "adam" | "sgd", ...our spec, defaults applied...},
              "params": {name: {"shape": [...], "data": [...]}},
              "grads": [{name: [...]}, ...]}]}    # one entry per step
and writes JSON to stdout, per case the snapshot after each step:
  {"torch": version, "cases": [[{"params": {name: [...]}, "state": {key: [...]}}, ...]]}
with state keys named as src/tasks/optimizers/index.ts names them (`<param>.exp_avg`, `step`).
float32 values travel as Python floats, whose repr round-trips exactly.
The single-tensor implementation is forced (foreach=False), on CPU, in float32.
"""
import json
import sys

import torch


def trajectory(req):
    spec = req['optimizer']
    names = list(req['params'].keys())
    params = {n: torch.tensor(req['params'][n]['data'], dtype=torch.float32).reshape(req['params'][n]['shape']).requires_grad_() for n in names}
    plist = [params[n] for n in names]
    if spec['name'] == 'adam':
        opt = torch.optim.Adam(plist, lr=spec['lr'], betas=tuple(spec['betas']), eps=spec['eps'],
                               weight_decay=spec['weight_decay'], amsgrad=spec['amsgrad'], foreach=False)
        slots = ['exp_avg', 'exp_avg_sq'] + (['max_exp_avg_sq'] if spec['amsgrad'] else [])
    elif spec['name'] == 'sgd':
        opt = torch.optim.SGD(plist, lr=spec['lr'], momentum=spec['momentum'], dampening=spec['dampening'],
                              weight_decay=spec['weight_decay'], nesterov=spec['nesterov'], foreach=False)
        slots = ['momentum_buffer'] if spec['momentum'] != 0 else []
    else:
        raise SystemExit('unknown optimizer ' + spec['name'])
    out = []
    for k, grads in enumerate(req['grads']):
        for n in names:
            params[n].grad = torch.tensor(grads[n], dtype=torch.float32).reshape(params[n].shape)
        opt.step()
        # torch.optim.Adam keeps a float32 `step` per parameter; SGD keeps none
        first = opt.state[params[names[0]]]
        state = {'step': [float(first['step']) if 'step' in first else float(k + 1)]}
        for n in names:
            st = opt.state[params[n]]
            for s in slots:
                state[n + '.' + s] = st[s].reshape(-1).tolist()
        out.append({'params': {n: params[n].detach().reshape(-1).tolist() for n in names}, 'state': state})
    return out


def main():
    cases = json.load(sys.stdin)['cases']
    json.dump({'torch': torch.__version__, 'cases': [trajectory(c) for c in cases]}, sys.stdout)


if __name__ == '__main__':
    main()
