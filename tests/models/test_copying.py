"""A copy of a compiled module runs (and trains) its own weights, not the original's."""
import copy

import torch
from torch import nn

from raykd.eval.elevater.classifier import ImageClassifier
from raykd.models.copying import independent_copy


def compiled_linear() -> nn.Module:
    module = nn.Linear(4, 3)
    module.compile(backend="eager")  # what model.compile does to each tower, without a C++ toolchain
    return module


def bound_to_another(original: nn.Module) -> nn.Module:
    """A deep copy whose compiled call still calls `original`, as torch releases before 2.14 leave one."""
    stale = copy.deepcopy(original)
    stale._compiled_call_impl = original._compiled_call_impl
    return stale


def test_a_copy_runs_its_own_weights_even_when_its_compiled_call_points_at_the_original():
    original, x = compiled_linear(), torch.randn(2, 4)
    stale = bound_to_another(original)
    with torch.no_grad():
        stale.weight.zero_()
    torch.testing.assert_close(stale(x), original(x))  # the trap: the copy's weights are never used
    for source in (original, stale):
        fresh = independent_copy(source)
        with torch.no_grad():
            fresh.weight.zero_()
            fresh.bias.zero_()
        assert torch.equal(fresh(x), torch.zeros(2, 3))
        assert fresh._compiled_call_impl is None  # runs eagerly: nothing left that could call another module


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.image, self.image_head = bound_to_another(compiled_linear()), nn.Linear(3, 3)


def test_elevater_finetune_of_a_compiled_tower_updates_the_copy():
    model = Encoder()
    classifier = ImageClassifier(model, dim=3, num_classes=2)
    before = classifier.tower.weight.detach().clone()
    optimizer = torch.optim.SGD(classifier.parameters(), lr=0.5)
    nn.functional.cross_entropy(classifier(torch.randn(8, 4)), torch.randint(0, 2, (8,))).backward()
    assert classifier.tower.weight.grad is not None and classifier.tower._compiled_call_impl is None
    optimizer.step()
    assert not torch.equal(classifier.tower.weight, before)


def test_copy_made_on_a_device_keeps_values_ties_and_flags_in_new_storage():
    net = nn.Sequential(nn.Embedding(5, 4), nn.Linear(4, 5), nn.BatchNorm1d(5))
    net[1].weight = net[0].weight  # tied (both [5, 4]): one parameter under two names
    net[2].requires_grad_(False)
    clone = independent_copy(net, "cpu")
    assert clone[1].weight is clone[0].weight  # the tie survives
    for (name, a), b in zip(net.state_dict().items(), clone.state_dict().values()):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr(), name
    assert not clone[2].weight.requires_grad and clone[1].bias.requires_grad
