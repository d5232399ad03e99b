"""Networks of the training lab: shapes on CIFAR and MNIST inputs, parameter counts against the
published architectures, seeded initialisation, and one real SAM step through the optimizer shell."""

import pytest
import torch
import torch.nn.functional as F

import sam_core
from sam_core.training.models import MODELS, build_model, count_parameters, has_batchnorm

# parameter counts of the published CIFAR-10 architectures (He et al. 2016 table 6: 0.27M / 0.85M;
# kuangliu/pytorch-cifar ResNet-18: 11,173,962; WRN-16-8 ≈ 11.0M, WRN-28-10 ≈ 36.5M (Zagoruyko &
# Komodakis table 1); LeNet-5 on 32×32×3 with a 400-120-84-10 head: 62,006)
PUBLISHED = {
    "lenet5": (62006, 0),
    "resnet20": (0.27e6, 0.01),
    "resnet56": (0.85e6, 0.01),
    "resnet18": (11173962, 0),
    "wrn16_8": (11.0e6, 0.01),
    "wrn28_10": (36.5e6, 0.01),
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_parameter_counts_match_published(name):
    n = count_parameters(build_model(name, 3, 32, 10))
    ref, rel = PUBLISHED[name]
    assert abs(n - ref) <= rel * ref, (name, n)


@pytest.mark.parametrize("name", ["mlp", "lenet5", "resnet20", "fast"])
@pytest.mark.parametrize("shape", [(3, 32, 100), (1, 28, 10)])
def test_forward_shapes(name, shape):
    c, s, k = shape
    m = build_model(name, c, s, k)
    out = m(torch.randn(4, c, s, s))
    assert out.shape == (4, k) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["resnet18", "wrn16_8"])
def test_big_nets_forward_on_cifar(name):
    m = build_model(name, 3, 32, 10).eval()
    with torch.no_grad():
        assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_seeded_init_and_unknown_name():
    a, b, c = (build_model("resnet20", 3, 32, 10, seed=s) for s in (1, 1, 2))
    pa, pb, pc = (torch.cat([p.reshape(-1) for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    before = torch.get_rng_state()
    build_model("lenet5", 3, 32, 10, seed=9)
    assert torch.equal(before, torch.get_rng_state())  # the global RNG is left alone
    with pytest.raises(ValueError, match="model: unknown model 'vgg'"):
        build_model("vgg", 3, 32, 10)
    assert set(MODELS) == {"mlp", "lenet5", "cnn8", "resnet20", "resnet56", "resnet18", "wrn16_8", "wrn28_10", "fast"}


def test_option_a_shortcut_is_parameter_free():
    m = build_model("resnet20", 3, 32, 10)
    convs = [p for n, p in m.named_parameters() if p.dim() == 4]
    assert len(convs) == 19  # 1 stem + 18 block convs: no 1×1 projections
    assert has_batchnorm(m) and not has_batchnorm(build_model("lenet5", 3, 32, 10))


def test_sam_step_on_resnet_keeps_bn_stats_of_first_pass_only():
    """One SSAM step through the shell with bn_model: the running mean moves exactly as one forward."""
    torch.manual_seed(0)
    m = build_model("resnet20", 3, 32, 10)
    ref = build_model("resnet20", 3, 32, 10)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    opt = sam_core.make_optimizer("ssam", m.named_parameters(), lr=0.1, momentum=0.9, rho=0.05)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        return loss

    opt.step(closure, bn_model=m)
    ref.train()
    with torch.no_grad():
        ref(x)  # one forward from the same init: the running stats a single pass produces
    assert torch.allclose(m.bn.running_mean, ref.bn.running_mean, atol=1e-6)
    assert int(m.bn.num_batches_tracked) == 1
    assert torch.isfinite(opt.stats["gamma"])
