"""CVTCLinear against an independent simulation of the neuron ODE, gradients, encoder."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator

import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from sb3_snn.cvtc import CVTCLinear, PopulationEncoder, cvtc_spike_times, default_z_never
from sb3_snn.cvtc import layers as cvtc_module
from sb3_snn.cvtc.layers import fused_available

T_MIN, T_MAX, DT = -1.0, 9.0, 1e-4


def simulate_first_spike(t_in: np.ndarray, w: np.ndarray, beta: float) -> float:
    """First t with V(t) = sum_i w_i (1 - exp(-(t - t_i))) [t > t_i] + beta exp(t) >= 1, on a fine grid
    (linear interpolation between grid points); ``inf`` if it never crosses before T_MAX."""
    t = np.arange(T_MIN, T_MAX, DT)
    v = beta * np.exp(t)
    for t_i, w_i in zip(t_in, w, strict=True):
        v = v + np.where(t > t_i, w_i * (1 - np.exp(-(t - t_i))), 0.0)
    above = np.nonzero(v >= 1)[0]
    if above.size == 0:
        return math.inf
    k = above[0]
    if k == 0:
        return t[0]
    return t[k - 1] + DT * (1 - v[k - 1]) / (v[k] - v[k - 1])


def _check_against_ode(
    z: th.Tensor, w: th.Tensor, beta: float, mostafa: bool = False, method: str = "fast",
) -> tuple[int, int]:
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


#: every route to the spike times: the fused numba kernels (CPU default), the torch implementation with
#: its hand-written backward finding uncertain causal sets pairwise (O(in^2), what small layers use) or by
#: sorting (what wide layers use: every pair scanned -> the dense path, some -> per sample), and the two
#: autograd references
ROUTES = ["fused", "torch-pairwise", "torch-sorted", "auto", "scan"]


@pytest.fixture
def route_method(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The ``method`` of a route in :data:`ROUTES` (parametrised indirectly), with the torch routes' causal
    search forced."""
    route = request.param
    if route.startswith("torch-"):
        monkeypatch.setattr(cvtc_module, "_PAIRWISE_LIMIT", 2**62 if route == "torch-pairwise" else -1)
        return "torch"
    return route


@pytest.mark.parametrize("route_method", ROUTES, indirect=True)
def test_matches_ode_random(route_method: str) -> None:
    method = route_method
    gen = th.Generator().manual_seed(0)
    z = th.exp(th.rand(6, 8, generator=gen, dtype=th.float64) * 3)  # t_i in [0, 3]
    w = th.randn(10, 8, generator=gen, dtype=th.float64) * 0.5 + 0.25  # mixed signs
    z_out, _ = cvtc_spike_times(z, w, beta=1e-3, method=method)
    z_scan, _ = cvtc_spike_times(z, w, beta=1e-3, method="scan")
    assert th.allclose(z_out, z_scan)
    strict, _ = _check_against_ode(z, w, 1e-3, method=method)
    assert strict >= 5  # the causal set is a strict subset of the inputs in several cases


@pytest.mark.parametrize("route_method", ["fused", "torch-pairwise", "torch-sorted", "auto"], indirect=True)
def test_matches_ode_when_no_input_suffices(route_method: str) -> None:
    method = route_method
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


@pytest.mark.parametrize("route_method", ["fused", "torch-pairwise", "torch-sorted", "auto"], indirect=True)
def test_mostafa_matches_ode_and_never_fires_finite(route_method: str) -> None:
    method = route_method
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
             (1e-3, False, "torch"), (1e-2, False, "torch"), (1e-3, True, "torch"),
             (1e-3, False, "fused"), (1e-2, False, "fused"), (1e-3, True, "fused")]
    for beta, mostafa, method in cases:
        z_out, _ = cvtc_spike_times(z, w, beta=beta, mostafa=mostafa, method=method)
        # away from set boundaries: no output spike within 1e-3 of an input spike
        gaps = (z_out.detach().unsqueeze(-1) - z.detach().unsqueeze(1)).abs()
        assert gaps.min() > 1e-3
        # gradcheck calls the function within this iteration
        assert th.autograd.gradcheck(lambda z_, w_: cvtc_spike_times(z_, w_, beta, mostafa, method=method)[0],  # noqa: B023
                                     (z, w))


@pytest.mark.parametrize("mostafa", [False, True])
@pytest.mark.parametrize("route_method", ["fused", "torch-pairwise", "torch-sorted"], indirect=True)
def test_fast_function_gradcheck_every_pair_scanned(mostafa: bool, route_method: str) -> None:
    # positive weights: the bound settles no pair (sorted: CVTCFunction takes its dense [out, batch, in] path)
    method = route_method
    gen = th.Generator().manual_seed(3)
    z = th.exp(th.rand(3, 6, generator=gen, dtype=th.float64) * 2).requires_grad_()
    w = (th.rand(4, 6, generator=gen, dtype=th.float64) * 0.5 + 0.3).requires_grad_()
    z_out, info = cvtc_spike_times(z, w, beta=1e-3, mostafa=mostafa, method=method)
    assert info.scanned == 1.0 and (z_out.detach().unsqueeze(-1) - z.detach().unsqueeze(1)).abs().min() > 1e-3
    assert (z.detach().unsqueeze(1) > z_out.detach().unsqueeze(-1)).any()  # some causal sets are strict subsets
    assert th.autograd.gradcheck(lambda z_, w_: cvtc_spike_times(z_, w_, 1e-3, mostafa, method=method)[0], (z, w))


@pytest.mark.parametrize("route_method", ["fused", "torch-pairwise", "torch-sorted"], indirect=True)
def test_fast_matches_autograd_on_cartpole_network(route_method: str) -> None:
    # float32, the paper's CartPole shape: first layer settled by the bound, output layer scanned
    gen = th.Generator().manual_seed(4)
    z = PopulationEncoder.preset("cartpole")(th.randn(16, 4, generator=gen) * 0.3)
    w1 = th.randn(200, 80, generator=gen) * 5 / 80 + 1.5 / 80
    w2 = th.randn(2, 200, generator=gen) * 5 / 200 + 1.5 / 200
    results = {}
    for method in (route_method, "scan"):
        p1, p2 = w1.clone().requires_grad_(), w2.clone().requires_grad_()
        hidden, _ = cvtc_spike_times(z, p1, method=method)
        out, info = cvtc_spike_times(hidden, p2, method=method)
        (out * th.tensor([1.0, -0.5])).sum().backward()
        results[method] = (out.detach(), p1.grad, p2.grad, info.scanned)
    for fast, scan in zip(results[route_method][:3], results["scan"][:3], strict=True):
        assert th.allclose(fast, scan, rtol=1e-4, atol=1e-4 * scan.abs().max().item())


def test_fast_is_fused_on_cpu_and_torch_elsewhere() -> None:
    # which implementation a call takes: CPU float32/float64 -> the numba kernels, anything else -> torch
    z = th.exp(th.rand(4, 6)).requires_grad_()
    w = (th.randn(3, 6) * 0.3 + 0.3).requires_grad_()
    assert fused_available(z, w) and fused_available(z.double(), w.double())
    assert not fused_available(z.to(th.bfloat16), w.to(th.bfloat16)) and not fused_available(z, w.double())
    assert type(cvtc_spike_times(z, w)[0].grad_fn).__name__ == "CVTCFusedFunctionBackward"
    assert type(CVTCLinear(6, 3)(z).grad_fn).__name__ == "CVTCFusedFunctionBackward"
    assert type(cvtc_spike_times(z, w, method="torch")[0].grad_fn).__name__ == "CVTCFunctionBackward"
    with pytest.raises(ValueError):
        cvtc_spike_times(z, w.double(), method="fused")
    with pytest.raises(ValueError):
        cvtc_spike_times(z, w, method="bogus")
    if th.cuda.is_available():
        z_out, _ = cvtc_spike_times(z.cuda(), w.cuda())
        assert type(z_out.grad_fn).__name__ == "CVTCFunctionBackward"


@pytest.fixture(params=["kernel", "gemm"])
def fused_sums(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test with the fused method computing the all-causal sums (and the backward pass) inside its
    kernels, as it does for small layers, or by torch GEMMs plus a correction, as for large ones (on one
    torch thread: tiny GEMMs split over the threads of a busy machine wait for each other, slowly)."""
    threads = th.get_num_threads()
    if request.param == "gemm":
        monkeypatch.setattr(cvtc_module, "_GEMM_MIN_OUT", 1)
        monkeypatch.setattr(cvtc_module, "_GEMM_MIN_WORK", 0)
        th.set_num_threads(1)
    else:
        monkeypatch.setattr(cvtc_module, "_GEMM_MIN_OUT", 2**62)
    yield request.param
    th.set_num_threads(threads)


@pytest.fixture(params=["buckets", "sort"])
def fused_search(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the fused method finding the causal sets of the pairs the bound leaves by coarse time
    buckets (no sort: samples with few such pairs) or by one sort of the sample's inputs (many pairs)."""
    monkeypatch.setattr(cvtc_module, "_BUCKET_MAX_NEURONS", 2**30 if request.param == "buckets" else 0)
    return request.param


def test_fast_falls_back_to_torch_without_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    import sb3_snn.cvtc

    monkeypatch.setitem(sys.modules, "numba", None)  # importing numba fails
    monkeypatch.delitem(sys.modules, "sb3_snn.cvtc.kernels", raising=False)
    monkeypatch.delattr(sb3_snn.cvtc, "kernels", raising=False)
    monkeypatch.setattr(cvtc_module, "_KERNELS", None)
    monkeypatch.setattr(cvtc_module, "_KERNELS_MISSING", False)
    z, w = th.exp(th.rand(3, 4)), (th.rand(2, 4) * 0.5).requires_grad_()
    with pytest.warns(UserWarning, match="numba"):
        assert not fused_available(z, w)
    z_out, _ = cvtc_spike_times(z, w)
    assert type(z_out.grad_fn).__name__ == "CVTCFunctionBackward"


def _mixed_case(gen: th.Generator, batch: int, n_in: int, n_out: int) -> tuple[th.Tensor, th.Tensor]:
    """Inputs with ties, and neurons of every kind: firing early (strict causal sets), settled by the bound,
    firing from beta alone / never under Mostafa (weights summing below 1), negative."""
    z = th.exp(th.rand(batch, n_in, generator=gen, dtype=th.float64) * 3)
    z[:, 1::5] = z[:, ::5][:, : z[:, 1::5].shape[1]]  # ties within every sample
    scale = th.tensor([3.0, 1.2, 0.6, 0.3, -0.5], dtype=th.float64).repeat(n_out // 5 + 1)[:n_out].unsqueeze(1)
    w = (th.randn(n_out, n_in, generator=gen, dtype=th.float64) * 2 + 1) * scale / n_in * 2
    return z, w


@pytest.mark.parametrize("dtype", [th.float32, th.float64])
@pytest.mark.parametrize(("beta", "mostafa"), [(1e-3, False), (1e-2, False), (1e-3, True)])
@pytest.mark.parametrize("shape", [(7, 12, 5), (9, 40, 24), (5, 300, 3)])  # few / many neurons, wide inputs
def test_fused_matches_autograd(
    dtype: th.dtype, beta: float, mostafa: bool, shape: tuple[int, int, int], fused_sums: str, fused_search: str
) -> None:
    gen = th.Generator().manual_seed(sum(shape))
    z64, w64 = _mixed_case(gen, *shape)
    z, w = z64.to(dtype).requires_grad_(), w64.to(dtype).requires_grad_()
    upstream = th.randn(shape[0], shape[2], generator=gen, dtype=th.float64)
    z_out, info = cvtc_spike_times(z, w, beta=beta, mostafa=mostafa, method="fused")
    (z_out * upstream.to(dtype)).sum().backward()
    # the reference: autograd through the bound + partial scan, in float64 on the same (rounded) inputs
    z_ref_in, w_ref_in = z.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    z_ref, info_ref = cvtc_spike_times(z_ref_in, w_ref_in, beta=beta, mostafa=mostafa, method="auto")
    (z_ref * upstream).sum().backward()
    rtol = 1e-10 if dtype == th.float64 else 2e-6
    assert th.allclose(z_out.detach().double(), z_ref.detach(), rtol=rtol, atol=0)
    assert th.equal(info.fired, info_ref.fired) and th.equal(info.beta_only, info_ref.beta_only)
    assert info.fired.dtype == th.bool and info.fired.shape == z_out.shape and 0 < info.scanned <= 1
    for grad, grad_ref in ((z.grad, z_ref_in.grad), (w.grad, w_ref_in.grad)):
        scale = grad_ref.abs().max().item()
        assert th.allclose(grad.double(), grad_ref, rtol=rtol * 10, atol=rtol * 10 * scale)
    # the cases the mix is meant to cover
    strict = (z.detach().unsqueeze(1) > z_out.detach().unsqueeze(-1)).any(-1)  # some input after the spike
    assert strict.any() and (~strict).any()
    if mostafa:
        never = ~info.fired
        assert never.any() and (z_out[never] == default_z_never(beta)).all()
        assert (w.grad.abs().sum() > 0) and info.fired.any()
    else:
        assert info.beta_only.any() and info.fired.all()


def test_fused_sort_edge_cases(fused_search: str) -> None:
    # wide rows: a crowded bucket (argsorted on its own), exact ties, a negative and a zero input (the bit
    # patterns do not order: merge sort), and inputs spanning many octaves
    gen = th.Generator().manual_seed(5)
    z = th.exp(th.rand(4, 200, generator=gen, dtype=th.float64) * 6)
    z[0, :150] = 2.0 + th.rand(150, generator=gen, dtype=th.float64) * 1e-9  # one bucket
    z[1, 50:120] = z[1, 10]  # 71 equal values
    z[2, 7] = -0.5
    z[3, 3] = 0.0
    w = th.randn(3, 200, generator=gen, dtype=th.float64) * 0.05 + 0.01
    w[0] += 0.02  # crosses early
    for dtype in (th.float32, th.float64):
        z_out, info = cvtc_spike_times(z.to(dtype), w.to(dtype), method="fused")
        z_ref, info_ref = cvtc_spike_times(z.to(dtype).double(), w.to(dtype).double(), method="auto")
        assert th.allclose(z_out.double(), z_ref, rtol=1e-10 if dtype == th.float64 else 2e-6)
        assert info.scanned == info_ref.scanned == 1.0


@pytest.mark.parametrize("n_out", [4, 20])
@pytest.mark.parametrize(("beta", "mostafa"), [(1e-3, False), (1e-2, False), (1e-3, True)])
def test_fused_gradcheck_mixed_pairs(n_out: int, beta: float, mostafa: bool, fused_sums: str, fused_search: str) -> None:
    gen = th.Generator().manual_seed(1)  # a draw with every output spike > 1e-3 away from every input
    z64, w64 = _mixed_case(gen, 3, 6, n_out)
    z, w = z64.requires_grad_(), w64.requires_grad_()
    z_out, info = cvtc_spike_times(z, w, beta=beta, mostafa=mostafa, method="fused")
    # away from set boundaries: no output spike within 1e-3 of an input spike
    assert (z_out.detach().unsqueeze(-1) - z.detach().unsqueeze(1)).abs().min() > 1e-3
    assert 0 < info.scanned < 1  # some pairs settled by the bound, some scanned
    assert th.autograd.gradcheck(lambda z_, w_: cvtc_spike_times(z_, w_, beta, mostafa, method="fused")[0], (z, w))


def test_fused_empty_batch_and_no_grad() -> None:
    w = (th.randn(5, 3) * 0.3 + 0.5).requires_grad_()
    z_out, info = cvtc_spike_times(th.empty(0, 3), w, method="fused")
    assert z_out.shape == (0, 5) and info.scanned == 0
    z_out.sum().backward()
    assert th.equal(w.grad, th.zeros_like(w))
    with th.no_grad():
        z_out, _ = cvtc_spike_times(th.exp(th.rand(2, 3)), w, method="fused")
    assert z_out.grad_fn is None and th.isfinite(z_out).all()


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
    space = spaces.Box(low=np.array([-4.8, -np.inf, 0.0], dtype=np.float32),
                       high=np.array([4.8, np.inf, np.inf], dtype=np.float32))
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
