"""minifoca's SGD and schedules equal torch.optim's, step for step, over a trajectory."""
import numpy as np
import pytest
import torch

from minifoca.optim import SGD, lr_at
from checks import assert_close


@pytest.mark.parametrize("momentum,nesterov,wd", [(0.9, True, 5e-4), (0.9, False, 1e-2), (0.0, False, 0.0),
                                                  (0.9, True, 0.0)])
def test_sgd_trajectory_equals_torch(momentum, nesterov, wd):
    rng = np.random.default_rng(1)
    params = {"W": rng.normal(size=(4, 3)), "b": rng.normal(size=4)}
    tparams = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    opt = SGD(params, lr=0.1, momentum=momentum, weight_decay=wd, nesterov=nesterov)
    topt = torch.optim.SGD(list(tparams.values()), lr=0.1, momentum=momentum, weight_decay=wd,
                           nesterov=nesterov)
    for step in range(10):
        if step == 5:  # a schedule changes lr between steps
            opt.lr = 0.03
            for g in topt.param_groups:
                g["lr"] = 0.03
        grads = {k: rng.normal(size=v.shape) for k, v in params.items()}
        opt.step(grads)
        for k, tp in tparams.items():
            tp.grad = torch.tensor(grads[k])
        topt.step()
        for k in params:
            assert_close(f"{k} after step {step}", params[k], tparams[k].detach().numpy(), 1e-13)


def test_nesterov_needs_momentum():
    with pytest.raises(ValueError, match="momentum"):
        SGD({}, lr=0.1, nesterov=True)


def test_state_dict_round_trip():
    rng = np.random.default_rng(2)
    p = {"W": rng.normal(size=3)}
    opt = SGD(p, lr=0.1, momentum=0.9, nesterov=True)
    opt.step({"W": np.ones(3)})
    saved = opt.state_dict()
    q = {"W": p["W"].copy()}
    opt2 = SGD(q, lr=0.5, momentum=0.9, nesterov=True)
    opt2.load_state_dict(saved)
    opt.step({"W": np.ones(3)})
    opt2.step({"W": np.ones(3)})
    assert_close("W after resumed step", q["W"], p["W"], 0.0)


def test_schedules_equal_torch():
    p = torch.nn.Parameter(torch.zeros(1))
    for name, make in [("step", lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [3, 6, 8], 0.1)),
                       ("cosine", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10))]:
        opt = torch.optim.SGD([p], lr=0.1)
        sched = make(opt)
        for epoch in range(10):
            ours = lr_at(epoch, 0.1, name, 10, (0.3, 0.6, 0.8), 0.1)
            assert abs(ours - opt.param_groups[0]["lr"]) < 1e-15, f"{name} lr at epoch {epoch}"
            opt.step()
            sched.step()
    assert lr_at(7, 0.1, "constant", 10) == 0.1
    # the paper's 600-epoch schedule from its fractions: x0.1 at 300, 400 and 500
    drops = [e for e in range(1, 600) if lr_at(e, 1, "step", 600, (0.5, 0.667, 0.833)) < lr_at(e - 1, 1, "step", 600, (0.5, 0.667, 0.833))]
    assert drops == [300, 400, 500], drops
    with pytest.raises(ValueError, match="schedule"):
        lr_at(0, 0.1, "linear", 10)
