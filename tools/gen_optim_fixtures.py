#!/usr/bin/env python3
"""Reference trajectories for Lockstep's optimizers, from torch.optim.

Writes one JSON file per case into Tests/OptimTests/Fixtures/. Each case runs a
torch.optim optimizer (foreach=False, i.e. the single-tensor code path that
Lockstep mirrors) for STEPS steps on a fixed 37-element float32 vector. The
gradient of step k depends on the current parameters (g = 0.3*p + 0.5*sin(k +
0.7*i), with a few tiny entries to exercise eps), so the trajectory matters.
The file records the config (in OptimizerConfig's Codable keys), the schedule,
the initial parameters, and per step the learning rate, the gradient and the
parameters after the step, plus the final optimizer state.

Usage: python3 tools/gen_optim_fixtures.py   (needs torch; tested with 2.13.0+cpu)
"""
import json
import math
import os

import torch

STEPS = 6
N = 37
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "OptimTests", "Fixtures")


def initial_params():
    i = torch.arange(N, dtype=torch.float64)
    return (torch.sin(0.37 * i + 0.1) * (1 + 0.05 * i)).to(torch.float32)


def gradient(p, k):
    i = torch.arange(N, dtype=torch.float64)
    g = (0.3 * p.detach().to(torch.float64) + 0.5 * torch.sin(k + 0.7 * i)).to(torch.float32)
    g[5] = 1e-4 * k
    g[11] = -3e-5
    g[23] = 0.0
    return g


# name, torch class, torch kwargs, Lockstep config (Codable keys; omitted keys take the kind's defaults), schedule
CASES = [
    ("sgd", torch.optim.SGD, dict(lr=0.1), dict(kind="sgd", learningRate=0.1), None),
    ("sgd_weight_decay", torch.optim.SGD, dict(lr=0.1, weight_decay=0.05),
     dict(kind="sgd", learningRate=0.1, weightDecay=0.05), None),
    ("momentum", torch.optim.SGD, dict(lr=0.05, momentum=0.9), dict(kind="momentum", learningRate=0.05), None),
    ("momentum_dampening_wd", torch.optim.SGD, dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01),
     dict(kind="momentum", learningRate=0.05, momentum=0.8, dampening=0.3, weightDecay=0.01), None),
    ("nesterov", torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True),
     dict(kind="nesterov", learningRate=0.05), None),
    ("adagrad", torch.optim.Adagrad, dict(lr=0.1), dict(kind="adagrad", learningRate=0.1), None),
    ("adagrad_lr_decay", torch.optim.Adagrad,
     dict(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.5, weight_decay=0.01),
     dict(kind="adagrad", learningRate=0.1, lrDecay=0.1, initialAccumulatorValue=0.5, weightDecay=0.01), None),
    ("adadelta", torch.optim.Adadelta, dict(), dict(kind="adadelta"), None),
    ("adadelta_wd", torch.optim.Adadelta, dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.02),
     dict(kind="adadelta", learningRate=0.5, rho=0.8, eps=1e-5, weightDecay=0.02), None),
    ("rmsprop", torch.optim.RMSprop, dict(), dict(kind="rmsprop"), None),
    ("rmsprop_centered_momentum", torch.optim.RMSprop,
     dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01),
     dict(kind="rmsprop", learningRate=0.01, momentum=0.9, centered=True, weightDecay=0.01), None),
    ("adam", torch.optim.Adam, dict(lr=0.01), dict(kind="adam", learningRate=0.01), None),
    ("adam_weight_decay", torch.optim.Adam, dict(lr=0.01, weight_decay=0.1),
     dict(kind="adam", learningRate=0.01, weightDecay=0.1), None),
    ("adamw", torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1),
     dict(kind="adamw", learningRate=0.01, weightDecay=0.1), None),
    ("adamw_defaults", torch.optim.AdamW, dict(), dict(kind="adamw"), None),
    ("momentum_step_lr", torch.optim.SGD, dict(lr=0.1, momentum=0.9), dict(kind="momentum", learningRate=0.1),
     dict(kind="step", stepSize=2, gamma=0.5)),
    ("adam_cosine", torch.optim.Adam, dict(lr=0.01), dict(kind="adam", learningRate=0.01),
     dict(kind="cosine", totalSteps=5, minLR=0.001)),
]


def floats(t):
    return [float(x) for x in t.detach().to(torch.float32).reshape(-1).tolist()]


def run(name, cls, kwargs, config, schedule):
    p = torch.nn.Parameter(initial_params().clone())
    opt = cls([p], foreach=False, **kwargs)
    sched = None
    if schedule is not None and schedule["kind"] == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=schedule["stepSize"], gamma=schedule["gamma"])
    elif schedule is not None and schedule["kind"] == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=schedule["totalSteps"],
                                                           eta_min=schedule["minLR"])
    record = dict(name=name, generator="tools/gen_optim_fixtures.py", torch=torch.__version__,
                  config=config, schedule=schedule or dict(kind="constant"),
                  initial=floats(p), steps=[])
    for k in range(1, STEPS + 1):
        g = gradient(p, k)
        p.grad = g.clone()
        lr = opt.param_groups[0]["lr"]
        opt.step()
        if sched is not None:
            sched.step()
        record["steps"].append(dict(lr=lr, grad=floats(g), params=floats(p)))
    state = opt.state[p]
    record["state"] = {key: floats(v) for key, v in state.items() if torch.is_tensor(v) and v.numel() == N}
    return record


def main():
    os.makedirs(OUT, exist_ok=True)
    for case in CASES:
        record = run(*case)
        with open(os.path.join(OUT, case[0] + ".json"), "w") as f:
            json.dump(record, f, indent=1)
            f.write("\n")
        print(f"{case[0]}: final |p| = {math.sqrt(sum(x * x for x in record['steps'][-1]['params'])):.6f}")


if __name__ == "__main__":
    main()
