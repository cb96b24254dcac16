"""raykd.distributed: no-ops without a process group, correct collectives under gloo (2 ranks)."""

import importlib

import torch

from raykd import distributed as D

# the same module object the loss tests use, whether or not tests/ is a package
_PACKAGE = f"{__package__}." if __package__ else ""
dist_utils = importlib.import_module(f"{_PACKAGE}losses.dist_utils")


def test_world_size_1_is_no_op():
    assert not D.is_dist() and D.world_size() == 1 and D.rank() == 0
    x = torch.randn(3, 4, requires_grad=True)
    assert D.all_gather_with_grad(x) is x
    gathered = D.all_gather_no_grad(x)
    assert not gathered.requires_grad and torch.equal(gathered, x)
    assert D.sync_grad(x) is x
    for fn in (D.all_reduce_sum, D.all_reduce_mean, D.broadcast):
        out = fn(x)
        assert torch.equal(out, x) and out.data_ptr() != x.data_ptr() and not out.requires_grad


def _collectives(x):
    r = D.rank()
    mine = (x[r] * (r + 1)).clone().requires_grad_(True)  # rank 0: x0, rank 1: 2*x1
    gathered = D.all_gather_with_grad(mine)
    weights = torch.arange(1.0, gathered.numel() + 1, dtype=x.dtype).view_as(gathered) * (r + 1)
    param = torch.ones(2, dtype=x.dtype, requires_grad=True)
    ((gathered * weights).sum() + (D.sync_grad(param) * (r + 1)).sum()).backward()
    return {
        "dist": (D.is_dist(), D.world_size(), r),
        "gathered": gathered.detach(),
        "grad": mine.grad,
        "param_grad": param.grad,
        "no_grad": D.all_gather_no_grad(mine),
        "sum": D.all_reduce_sum(mine),
        "mean": D.all_reduce_mean(mine),
        "bcast": D.broadcast(mine, src=1),
        "input_untouched": mine.detach(),
    }


def test_world_size_2_collectives():
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    out = dist_utils.run_in_two_processes(_collectives, x)
    local = [x[0], 2 * x[1]]
    expected_gather = torch.cat(local)
    weights = torch.arange(1.0, expected_gather.numel() + 1, dtype=x.dtype).view_as(expected_gather)
    for r, o in enumerate(out):
        assert o["dist"] == (True, 2, r)
        torch.testing.assert_close(o["gathered"], expected_gather)
        torch.testing.assert_close(o["no_grad"], expected_gather)
        # gradient = sum over ranks of d(rank loss)/d(my slice) = weights * (1 + 2)
        torch.testing.assert_close(o["grad"], 3 * weights.chunk(2)[r])
        torch.testing.assert_close(o["param_grad"], torch.full((2,), 1.5, dtype=x.dtype))  # mean of 1 and 2
        torch.testing.assert_close(o["sum"], local[0] + local[1])
        torch.testing.assert_close(o["mean"], (local[0] + local[1]) / 2)
        torch.testing.assert_close(o["bcast"], local[1])
        torch.testing.assert_close(o["input_untouched"], local[r])


def _batchnorm_after_own_batches(x):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.BatchNorm1d(4))
    net[3].track_running_stats = False  # a BatchNorm without running statistics is left alone
    net[1](x[D.rank()])  # each rank updates its running statistics on its own batch
    before = {k: v.clone() for k, v in net[1].state_dict().items()}
    D.average_batchnorm_stats(net)
    return {"before": before, "after": net[1].state_dict()}


def test_batchnorm_stats_are_averaged_over_ranks():
    x = torch.randn(2, 8, 4, 5, 5)
    x[1] = x[1] * 3 + 2  # the ranks see different data
    out = dist_utils.run_in_two_processes(_batchnorm_after_own_batches, x)
    for key in ("running_mean", "running_var"):
        assert not torch.allclose(out[0]["before"][key], out[1]["before"][key])
        expected = (out[0]["before"][key] + out[1]["before"][key]) / 2
        for rank in (0, 1):
            torch.testing.assert_close(out[rank]["after"][key], expected)
    assert out[0]["after"]["num_batches_tracked"] == 1  # the counter is not averaged (nor summed)
    net = torch.nn.BatchNorm1d(3)
    net.running_mean.fill_(5.0)
    D.average_batchnorm_stats(net)  # world size 1: untouched
    assert torch.equal(net.running_mean, torch.full((3,), 5.0))


def _sync_grad_of_marked_parameter():
    module = torch.nn.Linear(1, 1, bias=False)
    D.mark_averaged_by_ddp(module)  # what the training loop does when DDP wraps model and losses
    (D.sync_grad(module.weight) * (D.rank() + 1)).sum().backward()
    return module.weight.grad


def test_sync_grad_leaves_gradients_that_ddp_averages_to_ddp():
    """Averaging the losses' own parameter gradients in sync_grad and again in DDP cost two all-reduces."""
    out = dist_utils.run_in_two_processes(_sync_grad_of_marked_parameter)
    assert [o.item() for o in out] == [1.0, 2.0]  # local: DDP's own all-reduce averages them
