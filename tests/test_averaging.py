"""TailAverage: a module's parameters as the mean over the ends of a stage's last epochs."""

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skcreate.training import Callback, EpochRecord, Stage, train
from skcreate.training.averaging import TailAverage


class Snapshots(Callback):
    def __init__(self, module):
        self.module, self.taken = module, []

    def on_epoch_end(self, record):
        self.taken.append((record.stage, [p.detach().clone() for p in self.module.parameters()]))


class Regression(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)
        self.register_buffer("seen", torch.zeros(()))

    def forward(self, batch):
        self.seen += 1
        return {"loss": ((self.linear(batch[:, :3]).squeeze(1) - batch[:, 3]) ** 2).mean()}


def _plan(warmup, joint):
    data = torch.randn(4, 8, 4, generator=torch.Generator().manual_seed(0))
    return [Stage("warmup", warmup, lambda epoch: iter(data), validate=False),
            Stage("joint", joint, lambda epoch: iter(data))]


@settings(max_examples=15, deadline=None)
@given(warmup=st.integers(0, 3), joint=st.integers(1, 5), data=st.data())
def test_the_parameters_become_the_mean_of_the_stage_s_last_epochs(warmup, joint, data):
    last = data.draw(st.integers(1, joint))
    torch.manual_seed(0)
    module = Regression()
    average, snapshots = TailAverage(module, "joint", joint, last), Snapshots(module)
    train(module, _plan(warmup, joint), functools.partial(torch.optim.SGD, lr=0.05),
          callbacks=[average, snapshots])
    seen = module.seen.clone()
    average.apply()
    joint_ends = [params for stage, params in snapshots.taken if stage == "joint"][-last:]
    for param, values in zip(module.parameters(), zip(*joint_ends)):
        torch.testing.assert_close(param.detach(), torch.stack(values).mean(0))
    # buffers are left as they are
    assert torch.equal(module.seen, seen)


def test_one_epoch_keeps_the_last_weights_and_nothing_averaged_changes_nothing():
    module = Regression()
    average = TailAverage(module, "joint", 3, 1)
    for epoch in (1, 2):
        average.on_epoch_end(EpochRecord(epoch, "joint", 0.0, 0.0, {}))
    before = [p.detach().clone() for p in module.parameters()]
    average.apply()  # the averaged epoch has not ended yet
    assert all(torch.equal(a, b) for a, b in zip(module.parameters(), before))
    with torch.no_grad():
        module.linear.weight.add_(1.0)
    average.on_epoch_end(EpochRecord(3, "joint", 0.0, 0.0, {}))
    with torch.no_grad():
        module.linear.weight.add_(1.0)
    average.apply()
    torch.testing.assert_close(module.linear.weight, before[0] + 1, rtol=0, atol=0)


@pytest.mark.parametrize("last", [0, 4])
def test_the_averaged_epochs_must_be_the_stage_s(last):
    with pytest.raises(ValueError, match=r"last must be in \[1, epochs=3\]"):
        TailAverage(Regression(), "joint", 3, last)
