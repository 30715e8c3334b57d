"""CVTCLinear against an independent simulation of the neuron ODE, gradients, encoder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from sb3_snn.layers import CVTCLinear, PopulationEncoder, cvtc_spike_times, default_z_never
from sb3_snn.layers import cvtc as cvtc_module

T_MIN, T_MAX, DT = -1.0, 9.0, 1e-4


def simulate_first_spike(t_in: np.ndarray, w: np.ndarray, beta: float) -> float:
    """First t with V(t) = sum_i w_i (1 - exp(-(t - t_i))) [t > t_i] + beta exp(t) >= 1, on a fine grid
    (linear interpolation between grid points); ``inf`` if it never crosses before T_MAX."""
    t = np.arange(T_MIN, T_MAX, DT)
    v = beta * np.exp(t)
    for t_i, w_i in zip(t_in, w):
        v = v + np.where(t > t_i, w_i * (1 - np.exp(-(t - t_i))), 0.0)
    above = np.nonzero(v >= 1)[0]
    if above.size == 0:
        return math.inf
    k = above[0]
    if k == 0:
        return t[0]
    return t[k - 1] + DT * (1 - v[k - 1]) / (v[k] - v[k - 1])


def _check_against_ode(z: th.Tensor, w: th.Tensor, beta: float, mostafa: bool = False, method: str = "fast") -> tuple[int, int]:
    """Compare every (sample, neuron) with the ODE; returns (strict-subset cases, never-fire cases)."""
    z_out, info = cvtc_spike_times(z, w, beta=beta, mostafa=mostafa, method=method)
    strict, never = 0, 0
    for b in range(z.shape[0]):
        for j in range(w.shape[0]):
            t_sim = simulate_first_spike(np.log(z[b].numpy()), w[j].numpy(), 0.0 if mostafa else beta)
            if math.isinf(t_sim) or t_sim > T_MAX - 0.5:
                if mostafa:
                    assert not info.fired[b, j] and z_out[b, j].item() == default_z_never(beta)
                never += 1
                continue
            assert abs(math.log(z_out[b, j].item()) - t_sim) < 1e-3, (b, j, math.log(z_out[b, j].item()), t_sim)
            strict += int((z[b] > z_out[b, j]).any())
    return strict, never


@pytest.fixture(params=["pairwise", "sorted"])
def causal_search(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the fast method finding uncertain causal sets pairwise (O(in^2), what small layers
    use) or by sorting (what wide layers use: every pair scanned -> the dense path, some -> per sample)."""
    monkeypatch.setattr(cvtc_module, "_PAIRWISE_LIMIT", 2**62 if request.param == "pairwise" else -1)
    return request.param


@pytest.mark.parametrize("method", ["fast", "auto", "scan"])
def test_matches_ode_random(method: str, causal_search: str) -> None:
    gen = th.Generator().manual_seed(0)
    z = th.exp(th.rand(6, 8, generator=gen, dtype=th.float64) * 3)  # t_i in [0, 3]
    w = th.randn(10, 8, generator=gen, dtype=th.float64) * 0.5 + 0.25  # mixed signs
    z_out, _ = cvtc_spike_times(z, w, beta=1e-3, method=method)
    z_scan, _ = cvtc_spike_times(z, w, beta=1e-3, method="scan")
    assert th.allclose(z_out, z_scan)
    strict, _ = _check_against_ode(z, w, 1e-3, method=method)
    assert strict >= 5  # the causal set is a strict subset of the inputs in several cases


@pytest.mark.parametrize("method", ["fast", "auto"])
def test_matches_ode_when_no_input_suffices(method: str, causal_search: str) -> None:
    # weights summing below 1: Mostafa never fires, the beta term makes the neuron fire after every input
    z = th.exp(th.tensor([[0.5, 1.0, 2.0, 2.5]], dtype=th.float64))
    w = th.tensor([[0.2, 0.1, -0.1, 0.3], [0.1, 0.1, 0.1, 0.1]], dtype=th.float64)
    _check_against_ode(z, w, 1e-3, method=method)
    z_out, info = cvtc_spike_times(z, w, beta=1e-3, method=method)
    assert info.beta_only.all() and (z_out > z.max()).all()
    # inputs after 1/beta (t = 6.9): the beta term alone fires first, at exactly z = 1/beta
    late = th.exp(th.tensor([[7.5, 8.0]], dtype=th.float64))
    z_out, _ = cvtc_spike_times(late, th.tensor([[2.0, 2.0]], dtype=th.float64), beta=1e-3, method=method)
    assert z_out.item() == pytest.approx(1e3)
    _check_against_ode(late, th.tensor([[2.0, 2.0]], dtype=th.float64), 1e-3, method=method)


@pytest.mark.parametrize("method", ["fast", "auto"])
def test_mostafa_matches_ode_and_never_fires_finite(method: str, causal_search: str) -> None:
    gen = th.Generator().manual_seed(1)
    z = th.exp(th.rand(5, 6, generator=gen, dtype=th.float64) * 2)
    w = th.randn(8, 6, generator=gen, dtype=th.float64) * 0.6 + 0.2
    strict, never = _check_against_ode(z, w, 1e-3, mostafa=True, method=method)
    assert never > 0 and strict > 0
    z_out, _ = cvtc_spike_times(z, w, beta=0.0, method=method)  # beta = 0 is the same equation
    assert th.isfinite(z_out).all()
    assert th.equal(z_out, cvtc_spike_times(z, w, beta=1e-3, mostafa=True, method=method)[0])


def test_gradcheck_away_from_boundaries() -> None:
    gen = th.Generator().manual_seed(2)
    z = th.exp(th.rand(3, 5, generator=gen, dtype=th.float64) * 2).requires_grad_()
    w = (th.randn(4, 5, generator=gen, dtype=th.float64) * 0.5 + 0.4).requires_grad_()
    cases = [(1e-3, False, "auto"), (1e-3, False, "scan"), (1e-2, False, "auto"), (1e-3, True, "scan"),
             (1e-3, False, "fast"), (1e-2, False, "fast"), (1e-3, True, "fast")]
    for beta, mostafa, method in cases:
        z_out, _ = cvtc_spike_times(z, w, beta=beta, mostafa=mostafa, method=method)
        # away from set boundaries: no output spike within 1e-3 of an input spike
        gaps = (z_out.detach().unsqueeze(-1) - z.detach().unsqueeze(1)).abs()
        assert gaps.min() > 1e-3
        assert th.autograd.gradcheck(lambda z_, w_: cvtc_spike_times(z_, w_, beta, mostafa, method=method)[0], (z, w))


@pytest.mark.parametrize("mostafa", [False, True])
def test_fast_function_gradcheck_every_pair_scanned(mostafa: bool, causal_search: str) -> None:
    # positive weights: the bound settles no pair (sorted: CVTCFunction takes its dense [out, batch, in] path)
    gen = th.Generator().manual_seed(3)
    z = th.exp(th.rand(3, 6, generator=gen, dtype=th.float64) * 2).requires_grad_()
    w = (th.rand(4, 6, generator=gen, dtype=th.float64) * 0.5 + 0.3).requires_grad_()
    z_out, info = cvtc_spike_times(z, w, beta=1e-3, mostafa=mostafa, method="fast")
    assert info.scanned == 1.0 and (z_out.detach().unsqueeze(-1) - z.detach().unsqueeze(1)).abs().min() > 1e-3
    assert (z.detach().unsqueeze(1) > z_out.detach().unsqueeze(-1)).any()  # some causal sets are strict subsets
    assert th.autograd.gradcheck(lambda z_, w_: cvtc_spike_times(z_, w_, 1e-3, mostafa, method="fast")[0], (z, w))


def test_fast_matches_autograd_on_cartpole_network(causal_search: str) -> None:
    # float32, the paper's CartPole shape: first layer settled by the bound, output layer scanned
    gen = th.Generator().manual_seed(4)
    z = PopulationEncoder.preset("cartpole")(th.randn(16, 4, generator=gen) * 0.3)
    w1 = th.randn(200, 80, generator=gen) * 5 / 80 + 1.5 / 80
    w2 = th.randn(2, 200, generator=gen) * 5 / 200 + 1.5 / 200
    results = {}
    for method in ("fast", "scan"):
        p1, p2 = w1.clone().requires_grad_(), w2.clone().requires_grad_()
        hidden, _ = cvtc_spike_times(z, p1, method=method)
        out, info = cvtc_spike_times(hidden, p2, method=method)
        (out * th.tensor([1.0, -0.5])).sum().backward()
        results[method] = (out.detach(), p1.grad, p2.grad, info.scanned)
    for fast, scan in zip(results["fast"][:3], results["scan"][:3]):
        assert th.allclose(fast, scan, rtol=1e-4, atol=1e-4 * scan.abs().max().item())


def test_layer_module_batches_and_never_nan() -> None:
    layer = CVTCLinear(80, 16)
    z = PopulationEncoder.preset("cartpole")(th.randn(32, 4))
    out = layer(z)
    assert out.shape == (32, 16) and th.isfinite(out).all()
    out.sum().backward()
    assert th.isfinite(layer.weight.grad).all()
    with th.no_grad():
        layer.weight.fill_(-0.1)  # nothing can fire without beta
    layer.mostafa = True
    out = layer(z)
    assert th.isfinite(out).all() and (out == layer.z_never).all()
    assert layer.weight_sum_penalty().item() > 0
    with pytest.raises(ValueError):
        CVTCLinear(4, 4, init="bogus")


def test_encoder_presets_and_bounds() -> None:
    cart = PopulationEncoder.preset("cartpole")
    z = cart(th.zeros(2, 4))
    assert z.shape == (2, 80) and (z > 0).all() and (z <= 6).all()
    mountain = PopulationEncoder.preset("mountaincar")
    z = mountain(th.tensor([[-0.5, 0.0]]))
    assert z.shape == (1, 40) and z.min() >= 1.0 - 1e-6  # A * Norm clipped at 5
    space = spaces.Box(low=np.array([-4.8, -np.inf, 0.0], dtype=np.float32), high=np.array([4.8, np.inf, np.inf], dtype=np.float32))
    auto = PopulationEncoder.from_space(space)
    assert auto.out_features == 60 and th.isfinite(auto.gains).all()
    assert auto.gains[0].item() == pytest.approx(19 / 9.6) and auto.offsets[2].item() == pytest.approx(3.0)
    # the earliest spike lands on the point matching the value (low -> k = 0, high -> k = K-1)
    z = auto(th.tensor([[-4.8, 3.0, 6.0]]))
    assert z.view(3, 20).argmin(dim=1).tolist() == [0, 19, 19]
    assert PopulationEncoder.build(space, {"n_points": 10}).out_features == 30
    with pytest.raises(ValueError):
        PopulationEncoder.build(space, "cartpole")  # 4 gains for 3 dimensions
    with pytest.raises(ValueError):
        PopulationEncoder.from_space(spaces.Discrete(3))  # type: ignore[arg-type]
