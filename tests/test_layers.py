import pytest

torch = pytest.importorskip("torch")

from mnistctl.layers import LEVELS, Dropout, keep_mask  # noqa: E402


def features(n=64):
    return torch.randn(n, 32, 14, 14).contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("p", [0.25, 0.4, 0.5])
def test_each_element_is_dropped_with_probability_p_and_the_mean_is_kept(p):
    torch.manual_seed(0)
    mask = keep_mask(torch.ones(400_000), 1 - p)
    kept = round((1 - p) * LEVELS)
    assert set(mask.unique().tolist()) == {0.0, torch.tensor(LEVELS / kept).item()}
    # the 16-bit draws of each 64-bit word come from all of its bits: every lane drops at rate p
    for lane in range(4):
        rate = (mask[lane::4] == 0).double().mean().item()
        assert abs(rate - p) < 0.005, (lane, rate)
    assert abs(mask.double().mean().item() - 1) < 0.01


def test_the_mask_comes_from_torchs_generator_so_a_seed_or_a_restored_state_repeats_it():
    x = features()
    torch.manual_seed(3)
    first = Dropout(0.4)(x)
    torch.manual_seed(3)
    assert torch.equal(Dropout(0.4)(x), first)
    state = torch.get_rng_state()
    again = Dropout(0.4)(x)
    assert not torch.equal(again, first)
    torch.set_rng_state(state)
    assert torch.equal(Dropout(0.4)(x), again)


def test_the_gradient_is_the_mask_and_the_layout_is_the_inputs():
    torch.manual_seed(1)
    x = features().requires_grad_()
    y = Dropout(0.4)(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(y)
    y.backward(grad)
    scale = LEVELS / round(0.6 * LEVELS)
    kept = y.detach() != 0
    assert torch.allclose(y.detach()[kept], x.detach()[kept] * scale)
    assert torch.equal(x.grad, torch.where(kept, grad * scale, torch.zeros_like(grad)))


def test_bf16_features_keep_their_dtype_as_torchs_dropout_does():
    torch.manual_seed(0)
    x = features().bfloat16()
    y = Dropout(0.4)(x)
    assert y.dtype == torch.bfloat16
    assert torch.equal(y[y != 0], (x * torch.tensor(LEVELS / round(0.6 * LEVELS), dtype=torch.bfloat16))[y != 0])


def test_outside_training_and_at_the_ends_of_p_it_is_torchs_dropout():
    x = features(4)
    layer = Dropout(0.4).eval()
    assert layer(x) is x
    assert Dropout(0.0)(x) is x
    assert not Dropout(1.0)(x).any()
    flat = torch.randn(8, 128)
    assert Dropout(0.5)(flat).shape == flat.shape
