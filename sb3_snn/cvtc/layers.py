"""The CVTC temporal-coded linear layer (Wu et al. 2022, after Mostafa 2017), in the z-domain.

A neuron integrates exponentially decaying synaptic currents (tau_syn = 1, threshold 1, no leak)
and fires once. With z = exp(t) for every spike time, its membrane after input spikes z_i is

    V(z) = sum_{i: z_i < z} w_i (1 - z_i / z) + beta * z                                  (paper Eq. 8)

The causal set C holds the inputs that arrive before the output spike. With W_C = sum_C w_i and
N_C = sum_C w_i z_i, V(z) = 1 is beta z^2 + (W_C - 1) z - N_C = 0, whose upper root is

    z_out = [-(W_C - 1) + sqrt((W_C - 1)^2 + 4 beta N_C)] / (2 beta)                       (Eq. 9)

and, without the beta term (Mostafa's equation, the one a chip runs),

    z_out = N_C / (W_C - 1),  defined only when W_C > 1                                      (Eq. 4)

Finding C: sort the inputs; the output fires in the gap after the k-th input for the first k with
V(z_(k+1)) >= 1 (V is continuous, and inside one gap it only crosses 1 upwards). With beta > 0 every
neuron fires (at z = 1/beta from the beta term alone when no input arrives first); under Mostafa a
neuron whose weights never lift V to 1 returns the finite sentinel ``z_never`` (default 1/beta, the
end of the window in which the beta-trained neuron would have fired from the beta term alone) with
zero gradient. Inputs must be positive (z = exp(t) > 0).

Speed: the exact scan over all sorted prefixes touches [batch, out, in] values (far more work than
an MLP of the same shape). Every method here scans only where it must: a bound from one matrix product proves
for most (sample, neuron) pairs that V stays below 1 until the last input (then C is every input and
W_C, N_C come from a GEMM); only the other pairs are searched. The result is exact either way.
The default ``method="fast"`` picks the fastest implementation for the tensors:

* ``"fused"`` (CPU float32/float64): :class:`CVTCFusedFunction`, numba kernels in
  :mod:`sb3_snn.cvtc.kernels` for the forward and the backward pass. Per layer one kernel call
  after (for large layers) two torch GEMMs: closed forms vectorised over neurons, the bound, and for
  the pairs it leaves a search in float64 that stops at the first threshold crossing - without any sort
  when a sample has few such pairs (coarse time buckets with a bound per bucket; only the bucket where
  the neuron may fire is sorted), else after one argsort of the sample's inputs. Backward: the
  implicit derivatives of Eq. 9 over each causal set (GEMMs plus a correction of the scanned pairs for
  large layers, one kernel for small ones). The kernels compile on first use and are cached on disk.
* ``"torch"`` (what CUDA runs): :class:`CVTCFunction`, the same algorithm in torch ops, forward without
  autograd and the same hand-written backward; the uncertain pairs are searched without sorting
  (V at every input time, O(in^2) per pair) when few, else by sorting their samples' inputs.

``"auto"`` is the torch algorithm through autograd and ``"scan"`` the straightforward batched scan,
both kept as references.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import torch as th
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

#: beta of every CVTC layer in the paper's code.
DEFAULT_BETA = 1e-3

#: Methods of :func:`cvtc_spike_times`: ``"fast"`` (default: ``"fused"`` for float32/float64 CPU
#: tensors, else ``"torch"``), ``"fused"`` (numba kernels for forward and backward, CPU only),
#: ``"torch"`` (bound + partial scan in torch ops, hand-written backward), ``"auto"`` (the same
#: through autograd) or ``"scan"`` (scan everything through autograd).
METHODS = ("fast", "fused", "torch", "auto", "scan")


class CVTCInfo(NamedTuple):
    """What a CVTC layer computed besides the spike times.

    :param fired: ``[batch, out]``, False where the neuron never fires (Mostafa mode only)
    :param beta_only: ``[batch, out]``, True where the neuron fires only thanks to the beta term
        (W_C <= 1: Mostafa's equation has no solution for its causal set)
    :param scanned: share of (sample, neuron) pairs that needed the exact prefix scan
    """

    fired: th.Tensor
    beta_only: th.Tensor
    scanned: float


def default_z_never(beta: float) -> float:
    """The sentinel spike time of a neuron that never fires: ``1/beta`` (``1/DEFAULT_BETA`` if beta is 0).

    :param beta: the layer's training beta
    """
    return 1.0 / (beta if beta > 0 else DEFAULT_BETA)


def _first_true(mask: th.Tensor) -> th.Tensor:
    """Index of the first True along the last dimension (``mask.shape[-1]`` where there is none)."""
    positions = th.arange(mask.shape[-1], device=mask.device)
    return th.where(mask, positions, mask.shape[-1]).amin(dim=-1)


def _sort_rows(z: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """``z.sort(dim=1)`` for positive inputs. On CPU float32 it sorts packed int64 keys with NumPy
    (float bits above, column below; the bits of a positive float order like the float), which is
    faster than ``torch.sort`` on CPU."""
    if z.device.type != "cpu" or z.dtype != th.float32 or z.shape[1] >= 2**31:
        return z.sort(dim=1)
    keys = (z.contiguous().view(th.int32).to(th.int64) << 32) | th.arange(z.shape[1])
    order = th.from_numpy(np.sort(keys.numpy(), axis=1)) & 0xFFFFFFFF
    return z.gather(1, order), order


def _sort_rows_padded(z: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """Each row of positive ``z [batch, in]`` sorted between a leading 0 and a trailing +inf.

    :return: ``z_padded [batch, in + 2]`` and ``order [batch, in + 2]``: the column of every sorted value,
        ``in`` for the leading 0 and ``in + 1`` for the trailing +inf
    """
    batch, n_in = z.shape
    if z.device.type != "cpu" or z.dtype != th.float32 or n_in + 2 >= 2**31:
        z_sorted, order = z.sort(dim=1)
        zero, inf = z.new_zeros(batch, 1), z.new_full((batch, 1), math.inf)
        order = th.cat([order.new_full((batch, 1), n_in), order, order.new_full((batch, 1), n_in + 1)], dim=1)
        return th.cat([zero, z_sorted, inf], dim=1), order
    # one NumPy sort of int64 keys (float bits above, column below) with the two sentinels included
    bits = F.pad(z.contiguous().view(th.int32), (1, 1), value=0)
    bits[:, -1] = 0x7F800000  # +inf
    keys = (bits.to(th.int64) << 32) | _sentinel_columns(n_in)  # columns: in, 0..in-1, in+1
    keys = th.from_numpy(np.sort(keys.numpy(), axis=1))
    return (keys >> 32).to(th.int32).view(th.float32), keys & 0xFFFFFFFF


def _scan_prefixes(
    z_sorted: th.Tensor, weight_sorted: th.Tensor, beta: float
) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
    """Exact causal sets of the given (sample, neuron) pairs by a scan over sorted prefixes.

    :param z_sorted: ``[pairs, in]`` input spike times, ascending (differentiable)
    :param weight_sorted: ``[pairs, in]`` the neuron's weights in the same order (differentiable)
    :param beta: beta (0 for Mostafa)
    :return: W_C and N_C ``[pairs]`` (differentiable) and ``fired`` ``[pairs]``
    """
    # W_k, N_k for prefix lengths k = 0..in (k = 0: nothing has arrived)
    w_prefix = F.pad(weight_sorted.cumsum(dim=1), (1, 0))
    n_prefix = F.pad((weight_sorted * z_sorted).cumsum(dim=1), (1, 0))
    with th.no_grad():
        # V(z_(k+1)) >= 1 with prefix k, times z_(k+1) > 0: W_k z - N_k + beta z^2 >= z
        z_next = z_sorted
        crosses = th.addcmul(beta * z_next * z_next - n_prefix[:, :-1], w_prefix[:, :-1], z_next) >= z_next
        # after the last input V -> W_in + beta z: fires for beta > 0, else only if W_in > 1
        last = w_prefix[:, -1:] > 1 if beta == 0 else th.ones_like(crosses[:, :1])
        k = _first_true(th.cat([crosses, last], dim=1))
        fired = k <= z_sorted.shape[1]
        k = k.clamp_max(z_sorted.shape[1]).unsqueeze(1)
    return w_prefix.gather(1, k).squeeze(1), n_prefix.gather(1, k).squeeze(1), fired


class _FastState(NamedTuple):
    """What :func:`_fast_forward` leaves for the backward pass and for :class:`CVTCInfo`."""

    z_out: th.Tensor  # [batch, out]
    inv_d: th.Tensor  # [batch, out], 1 / (2 beta z_out + W_C - 1): dz/dN_C (0 where the neuron never fires)
    rows: th.Tensor  # [pairs] sample of every scanned (sample, neuron) pair
    cols: th.Tensor  # [pairs] neuron of every scanned pair
    threshold: th.Tensor  # [pairs] first non-causal input time (+inf: every input is causal)
    dense: bool  # every pair was scanned: rows/cols enumerate neuron-major, threshold is [out, batch]
    fired: th.Tensor  # [batch, out]
    beta_only: th.Tensor  # [batch, out]
    scanned: float


def _first_crossing(
    z_padded: th.Tensor, weight_padded: th.Tensor, beta: float
) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
    """Causal sets by the prefix scan, without autograd.

    :param z_padded: ``[..., in + 2]`` input times in arrival order between a leading 0 and a trailing +inf
    :param weight_padded: ``[..., in + 1]`` the weights in the same order after a leading 0 (broadcasts
        with ``z_padded``)
    :param beta: beta (0 for Mostafa)
    :return: W_C, N_C and the threshold (first non-causal input time, +inf when every input is causal),
        shaped like the broadcast batch dimensions
    """
    n = z_padded.shape[-1] - 2
    w_prefix = weight_padded.cumsum(-1)  # W over the first m inputs, m = 0..n (index m)
    n_prefix = (weight_padded * z_padded[..., :-1]).cumsum(-1)  # N over the first m inputs
    z_next = z_padded[..., 1:-1]  # the (m+1)-th input, m = 0..n-1
    # V(z_(m+1)) >= 1 with the first m inputs causal, times z_(m+1) > 0:
    # W_m z_(m+1) - N_m + (beta z_(m+1) - 1) z_(m+1) >= 0
    crosses = th.addcmul((beta * z_next - 1) * z_next, w_prefix[..., :-1], z_next).sub_(n_prefix[..., :-1]) >= 0
    any_cross, m = crosses.max(dim=-1, keepdim=True)  # the first True (max returns the first maximum)
    m = m.masked_fill_(~any_cross, n)  # no crossing at an input: after the last one (m = n)
    threshold = z_padded[..., 1:].expand(*crosses.shape[:-1], n + 1).gather(-1, m).squeeze(-1)  # z_(m+1)
    return w_prefix.gather(-1, m).squeeze(-1), n_prefix.gather(-1, m).squeeze(-1), threshold


_SENTINEL_COLUMNS: dict[int, th.Tensor] = {}


def _sentinel_columns(n_in: int) -> th.Tensor:
    """``[in, 0, 1, ..., in - 1, in + 1]`` (int64, CPU), cached: the columns of a row padded by two sentinels."""
    if n_in not in _SENTINEL_COLUMNS:
        _SENTINEL_COLUMNS[n_in] = th.cat([th.tensor([n_in]), th.arange(n_in), th.tensor([n_in + 1])])
    return _SENTINEL_COLUMNS[n_in]


def _closed_form(w_c: th.Tensor, n_c: th.Tensor, beta: float, z_never: float) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
    """Eq. 9 (beta > 0) or Eq. 4 (beta = 0) without autograd.

    :param w_c: W_C, ``[out]`` (every input causal for every sample) or ``[batch, out]``
    :param n_c: N_C, ``[batch, out]``
    :return: ``z_out``, ``1/D`` with D = 2 beta z_out + W_C - 1 (0 where the neuron never fires), ``fired``
    """
    w_minus_1 = w_c - 1
    tiny = th.finfo(n_c.dtype).tiny
    if beta > 0:
        # D = sqrt of the discriminant; Eq. 9 is (D - (W_C - 1)) / (2 beta), computed as
        # 2 N_C / (D + (W_C - 1)) where W_C >= 1 (no cancellation): both are S / (2 beta) and 2 N_C / S with
        # S = D + |W_C - 1|
        root = th.add(w_minus_1 * w_minus_1, n_c, alpha=4 * beta).clamp_min_(0).sqrt_()
        s = root + w_minus_1.abs()
        above = w_minus_1 >= 0
        if w_c.dim() == 1 and bool(above.all()):  # the common case after training: one formula
            z_out = n_c.div(s.clamp_min_(tiny)).mul_(2)
        elif w_c.dim() == 1 and not bool(above.any()):
            z_out = s.div_(2 * beta)
        else:
            z_out = th.where(above, n_c.div(s.clamp_min(tiny)).mul_(2), s.div(2 * beta))
        fired = th.ones((), dtype=th.bool, device=n_c.device).expand(n_c.shape)
        return z_out, root.clamp_min_(tiny).reciprocal_(), fired
    # fires iff V crosses 1 at some input, or after the last one when W_in > 1; Eq. 4 needs W_C > 1
    fired = (w_minus_1 > 0).expand(n_c.shape)
    inv_d = th.where(fired, w_minus_1, 1.0).reciprocal_()  # 1 / (W_C - 1)
    z_out = th.where(fired, n_c * inv_d, z_never)  # Eq. 4
    return z_out, inv_d.masked_fill_(~fired, 0.0), fired


def _first_crossing_pairs(z_rows: th.Tensor, weight_rows: th.Tensor, beta: float) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
    """Causal sets of a few (sample, neuron) pairs without sorting, in O(in^2) per pair.

    V is continuous and inside a gap between inputs only crosses 1 upwards, so the output fires just
    before the earliest input time z_k with V(z_k) >= 1 (or after the last input when there is none):
    the threshold is that z_k and the causal set every input earlier than it.

    :param z_rows: ``[pairs, in]`` input times of each pair's sample
    :param weight_rows: ``[pairs, in]`` each pair's weights
    :param beta: beta (0 for Mostafa)
    :return: W_C, N_C and the threshold (+inf when every input is causal), each ``[pairs]``
    """
    # V(z_k) = sum_i w_i max(0, 1 - z_i / z_k) + beta z_k, [pairs, k]
    ratio = (1 - z_rows.unsqueeze(1) / z_rows.unsqueeze(2)).clamp_min_(0)
    v_at_inputs = th.baddbmm((beta * z_rows).unsqueeze(2), ratio, weight_rows.unsqueeze(2)).squeeze(2)
    threshold = th.where(v_at_inputs >= 1, z_rows, math.inf).amin(dim=1)
    causal_weight = weight_rows * (z_rows < threshold.unsqueeze(1))
    return causal_weight.sum(dim=1), (causal_weight * z_rows).sum(dim=1), threshold


#: :func:`_fast_forward` finds the causal sets of uncertain pairs by :func:`_first_crossing_pairs` when
#: pairs x in^2 is at most this, else by sorting the samples' inputs.
_PAIRWISE_LIMIT = 2**18


def _fast_forward(z: th.Tensor, weight: th.Tensor, beta: float, z_never: float) -> _FastState:
    """The forward pass of :class:`CVTCFunction` (no autograd): bound, partial scan, closed form."""
    batch, n_in = z.shape
    n_out = weight.shape[0]
    n_c = z @ weight.t()  # every input causal: N_C = sum_i w_i z_i (one GEMM) ...
    w_c = weight.sum(dim=1)  # ... and W_C = sum_i w_i, per neuron [out]
    # V(z) <= V+(z_last) + beta z_last for z <= z_last (V+ = the positive terms, monotone in z); below 1
    # proves that nothing fires before the last input, so C is every input. Times z_last:
    # sum_i w+_i (z_last - z_i) + beta z_last^2 < z_last, i.e. z @ w+ > (sum w+ - 1 + beta z_last) z_last
    z_last = z.amax(dim=1, keepdim=True)
    weight_positive = weight.clamp_min(0)
    uncertain = (z @ weight_positive.t()) <= (weight_positive.sum(dim=1) + (beta * z_last - 1)).mul_(z_last)
    n_uncertain = int(uncertain.count_nonzero())
    dense = n_uncertain == batch * n_out and n_uncertain * n_in * n_in > _PAIRWISE_LIMIT
    empty = th.empty(0, dtype=th.long, device=z.device)
    rows, cols, threshold = empty, empty, z.new_empty(0)
    if dense:  # every pair, as [out, batch, in + 1] by one index_select
        # leading 0 (m = 0 inputs: W = N = 0) and trailing +inf (no next input)
        z_padded, order = _sort_rows_padded(z)
        order_padded = order[:, :-1]  # column n_in of weight_padded is 0
        weight_sorted = F.pad(weight, (0, 1)).index_select(1, order_padded.reshape(-1)).view(n_out, batch, n_in + 1)
        w_scan, n_scan, threshold = _first_crossing(z_padded, weight_sorted, beta)
        z_out, inv_d, fired = _closed_form(w_scan.t(), n_scan.t(), beta, z_never)
        return _FastState(z_out=z_out, inv_d=inv_d, rows=rows, cols=cols, threshold=threshold, dense=True,
                          fired=fired, beta_only=fired & (w_scan.t() <= 1), scanned=1.0)
    z_out, inv_d, fired = _closed_form(w_c, n_c, beta, z_never)
    beta_only = fired & (w_c <= 1)
    if n_uncertain:  # the pairs the bound cannot settle: their own causal sets and closed forms
        rows, cols = uncertain.nonzero(as_tuple=True)
        if n_uncertain * n_in * n_in <= _PAIRWISE_LIMIT:
            w_scan, n_scan, threshold = _first_crossing_pairs(z.index_select(0, rows), weight.index_select(0, cols), beta)
        else:  # sort the samples that have an uncertain pair
            sorted_rows, position = th.unique_consecutive(rows, return_inverse=True)  # rows come sorted
            z_padded, order = _sort_rows_padded(z.index_select(0, sorted_rows))
            index = order.index_select(0, position)[:, :-1].add_(cols.unsqueeze(1) * (n_in + 1))
            weight_sorted = th.take(F.pad(weight, (0, 1)), index)
            w_scan, n_scan, threshold = _first_crossing(z_padded.index_select(0, position), weight_sorted, beta)
        z_pairs, inv_d_pairs, fired_pairs = _closed_form(w_scan, n_scan, beta, z_never)
        fired, beta_only = fired.clone(), beta_only.clone()  # materialise expanded [out] masks
        scatter = ((z_out, z_pairs), (inv_d, inv_d_pairs), (fired, fired_pairs), (beta_only, fired_pairs & (w_scan <= 1)))
        for full, pairs in scatter:
            full.index_put_((rows, cols), pairs)
    return _FastState(
        z_out=z_out, inv_d=inv_d, rows=rows, cols=cols, threshold=threshold, dense=False, fired=fired,
        beta_only=beta_only, scanned=n_uncertain / max(1, batch * n_out),
    )


class CVTCFunction(th.autograd.Function):
    """Spike times of a CVTC layer with a hand-written backward pass in torch ops (the ``"torch"`` method;
    what ``"fast"`` runs on CUDA).

    Forward (no autograd graph): :func:`_fast_forward`. Backward, from the implicit derivatives of
    beta z^2 + (W_C - 1) z - N_C = 0 with D = 2 beta z + W_C - 1 (= W_C - 1 under Mostafa):

        dz/dw_i = (z_i - z_out) / D,   dz/dz_i = w_i / D,   for i in C, 0 otherwise.

    Summed over the batch: every pair as if C were every input (two GEMMs), minus the non-causal
    inputs (z_i >= the pair's threshold) of the scanned pairs. Only ``z_out``, ``1/D``, the scanned
    pairs and their thresholds are kept between the passes.
    """

    @staticmethod
    def forward(ctx: Any, z: th.Tensor, weight: th.Tensor, beta: float, z_never: float, sink: list) -> th.Tensor:  # type: ignore[override]
        state = _fast_forward(z, weight, beta, z_never)
        sink.append(state)
        ctx.dense = state.dense
        ctx.save_for_backward(z, weight, state.z_out, state.inv_d, state.rows, state.cols, state.threshold)
        return state.z_out

    @staticmethod
    def backward(ctx: Any, grad_out: th.Tensor) -> tuple[th.Tensor | None, ...]:  # type: ignore[override]
        z, weight, z_out, inv_d, rows, cols, threshold = ctx.saved_tensors
        g = grad_out * inv_d  # G = dL/dz_out / D, [batch, out]
        need_z, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_z = grad_w = None
        if ctx.dense:  # every pair scanned: mask [out, batch, in] of the causal inputs z_i < threshold
            g_masked = (z.unsqueeze(0) < threshold.unsqueeze(-1)) * g.t().unsqueeze(-1)
            if need_w:  # sum_b G M (z_i - z_out)
                grad_w = (g_masked * (z.unsqueeze(0) - z_out.t().unsqueeze(-1))).sum(dim=1)
            if need_z:  # sum_j G M w_ji
                grad_z = (g_masked * weight.unsqueeze(1)).sum(dim=0)
            return grad_z, grad_w, None, None, None
        if need_w:  # C = every input: sum_b G_bj (z_bi - z_out_bj)
            grad_w = g.t() @ z - (g * z_out).sum(dim=0).unsqueeze(1)
        if need_z:  # sum_j G_bj w_ji
            grad_z = g @ weight
        if rows.numel() > 0:  # remove the non-causal inputs of the scanned pairs
            z_rows = z[rows]
            g_late = (z_rows >= threshold.unsqueeze(1)) * g[rows, cols].unsqueeze(1)
            if need_w:
                assert grad_w is not None  # set above when need_w
                grad_w = grad_w.index_add(0, cols, g_late * (z_rows - z_out[rows, cols].unsqueeze(1)), alpha=-1)
            if need_z:
                assert grad_z is not None  # set above when need_z
                grad_z = grad_z.index_add(0, rows, g_late * weight[cols], alpha=-1)
        return grad_z, grad_w, None, None, None


_KERNELS: ModuleType | None = None
_KERNELS_MISSING = False


def _load_kernels_file() -> ModuleType:
    """``kernels.py`` loaded from its file, for when this file was loaded without its package. Its
    compiled kernels are cached apart from the package's (numba's cache records the module name)."""
    import numba

    path = Path(__file__).with_name("kernels.py")
    spec = importlib.util.spec_from_file_location("cvtc_kernels_standalone", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]
    config: Any = numba.config  # its settings are set at import time: not in numba's type information
    cache_dir = config.CACHE_DIR
    config.CACHE_DIR = str(path.parent / "__pycache__" / "standalone")
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    finally:
        config.CACHE_DIR = cache_dir
    return module


def _kernels() -> ModuleType | None:
    """The numba kernels (:mod:`sb3_snn.cvtc.kernels`), imported on first use (numba is slow to
    import); ``None`` (with a warning, once) if numba cannot be imported."""
    global _KERNELS, _KERNELS_MISSING
    if _KERNELS is None and not _KERNELS_MISSING:
        try:
            try:
                from sb3_snn.cvtc import kernels as module
            except ImportError as error:  # this file was loaded on its own (benchmarks without the package)
                if getattr(error, "name", None) == "numba":
                    raise
                module = _load_kernels_file()
            _KERNELS = module
        except ImportError as error:
            _KERNELS_MISSING = True
            warnings.warn(f"CVTC layers run without the fused CPU kernels ({error}); install numba for speed", stacklevel=3)
    return _KERNELS


#: dtypes the fused kernels take, with the integer type of the same width (the sort reads bit patterns)
_FUSED_KEYS = {th.float32: np.int32, th.float64: np.int64}


def fused_available(z: th.Tensor, weight: th.Tensor) -> bool:
    """Whether ``method="fast"`` runs the fused numba kernels for these tensors (CPU, float32 or float64,
    one dtype, numba importable); otherwise it runs the torch implementation (:class:`CVTCFunction`).

    :param z: input spike times
    :param weight: the layer's weights
    """
    return (z.device.type == "cpu" and weight.device.type == "cpu" and z.dtype in _FUSED_KEYS and weight.dtype == z.dtype
            and _kernels() is not None)


#: :class:`CVTCFusedFunction` computes the sums as if every input were causal (and the backward pass) by
#: torch GEMMs for layers with at least ``_GEMM_MIN_OUT`` neurons and ``_GEMM_MIN_WORK`` multiply-adds
#: (batch x out x in), inside its kernels for smaller ones (a GEMM call there costs more than it computes).
_GEMM_MIN_OUT = 16
_GEMM_MIN_WORK = 2**18

#: A sample with at most this many (sample, neuron) pairs left by the bound finds their causal sets
#: without sorting its inputs (coarse time buckets, a bound per bucket, and a sort of one bucket only:
#: ``_bucket_scan`` in :mod:`sb3_snn.cvtc.kernels`); with more, one sort serves them all.
_BUCKET_MAX_NEURONS = 4


class CVTCFusedFunction(th.autograd.Function):
    """Spike times of a CVTC layer by fused CPU kernels (the ``"fused"`` method, default on CPU).

    Forward: ``z @ weight.T`` and ``z @ weight.clamp(min=0).T`` (N_C if every input is causal, and the
    bound; two torch GEMMs for large layers, dot products inside the kernel for small ones), then one
    call of :func:`sb3_snn.cvtc.kernels.cvtc_forward`: closed forms, the bound, and the exact
    causal sets of the pairs it leaves (coarse time buckets without a sort when a sample has few such
    pairs, else one argsort of its inputs; a scan to the first crossing). Backward
    (once differentiable): the implicit derivatives of :class:`CVTCFunction` over each pair's causal
    set: for large layers ``G^T z`` and ``G @ weight`` as torch GEMMs (every input causal) and a
    correction of the scanned pairs (:func:`sb3_snn.cvtc.kernels.cvtc_backward_correct`), for
    small ones a single kernel (:func:`sb3_snn.cvtc.kernels.cvtc_backward_direct`). Keeps
    ``z``, ``weight``, ``z_out``, ``1/D`` and the threshold (first non-causal input time) per pair, and
    the list of scanned pairs. CPU tensors, float32 or float64, one dtype.
    """

    @staticmethod
    def forward(ctx: Any, z: th.Tensor, weight: th.Tensor, beta: float, z_never: float, sink: list) -> th.Tensor:  # type: ignore[override]
        z_c, w_c = z.detach().contiguous(), weight.detach().contiguous()
        (batch, n_in), n_out = z_c.shape, w_c.shape[0]
        gemm = n_out >= _GEMM_MIN_OUT and batch * n_out * n_in >= _GEMM_MIN_WORK
        work = z_c.new_empty(4, batch, n_out)  # z @ w.T, z @ w+.T (every input causal); then 1/D, threshold
        if gemm:
            th.mm(z_c, w_c.t(), out=work[0])
            th.mm(z_c, w_c.clamp_min(0).t(), out=work[1])
        z_out = z_c.new_empty(batch, n_out)
        flags = th.empty(2, batch, n_out, dtype=th.bool)  # fired, beta_only
        pairs = th.empty(batch * n_out, dtype=th.int64)
        z_np = z_c.numpy()
        kernels = _kernels()
        assert kernels is not None, "fused_available() is False without numba"
        n_scanned = kernels.cvtc_forward(z_np, z_np.view(_FUSED_KEYS[z_c.dtype]), w_c.numpy(), work.numpy(), not gemm, beta,
                                         z_never, z_out.numpy(), flags.numpy(), pairs.numpy(), _BUCKET_MAX_NEURONS)
        fired, beta_only = flags.unbind(0)
        sink.append(CVTCInfo(fired, beta_only, n_scanned / max(1, batch * n_out)))
        ctx.gemm, ctx.n_scanned = gemm, n_scanned
        ctx.save_for_backward(z_c, w_c, z_out, work, pairs)
        return z_out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: th.Tensor) -> tuple[th.Tensor | None, ...]:  # type: ignore[override]
        z, weight, z_out, work, pairs = ctx.saved_tensors
        need_z, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need_z or need_w):
            return None, None, None, None, None
        kernels = _kernels()
        assert kernels is not None
        grad_out = grad_out.to(z_out.dtype).contiguous()
        if not ctx.gemm:
            grad_z = th.empty_like(z) if need_z else z.new_empty(0, 0)
            grad_w = th.empty_like(weight) if need_w else weight.new_empty(0, 0)
            kernels.cvtc_backward_direct(z.numpy(), weight.numpy(), z_out.numpy(), work.numpy(), grad_out.numpy(),
                                         grad_z.numpy(), grad_w.numpy(), need_z, need_w)
        else:
            batch = z.shape[0]
            g = z_out.new_empty(batch + 1, z_out.shape[1])  # G = dL/dz_out / D, and -sum_b G z_out
            kernels.cvtc_backward_weights(grad_out.numpy(), work.numpy(), z_out.numpy(), g.numpy())
            g_pairs = g[:batch]
            grad_w = th.addmm(g[batch].unsqueeze(1), g_pairs.t(), z) if need_w else weight.new_empty(0, 0)
            grad_z = g_pairs @ weight if need_z else z.new_empty(0, 0)  # sum_j G w_ji
            if ctx.n_scanned:
                kernels.cvtc_backward_correct(z.numpy(), weight.numpy(), z_out.numpy(), g.numpy(), work.numpy(),
                                              pairs.numpy()[: ctx.n_scanned], grad_z.numpy(), grad_w.numpy(), need_z, need_w)
        return (grad_z if need_z else None), (grad_w if need_w else None), None, None, None


def cvtc_spike_times(
    z: th.Tensor,
    weight: th.Tensor,
    beta: float = DEFAULT_BETA,
    mostafa: bool = False,
    z_never: float | None = None,
    method: str = "fast",
) -> tuple[th.Tensor, CVTCInfo]:
    """Output spike times (z-domain) of a fully connected CVTC layer, batched and differentiable.

    :param z: ``[batch, in]`` input spike times ``exp(t) > 0``
    :param weight: ``[out, in]``
    :param beta: the beta of Eq. 9; ``0`` means Mostafa's Eq. 4
    :param mostafa: use Eq. 4 (no beta term) whatever ``beta`` is
    :param z_never: what a neuron that never fires (Mostafa only) returns; default :func:`default_z_never`
    :param method: ``"fast"`` (default) is ``"fused"`` for CPU tensors of one dtype, float32 or float64
        (see :func:`fused_available`), else ``"torch"``. ``"fused"``: numba kernels for the forward and
        backward passes (:class:`CVTCFusedFunction`). ``"torch"``: the same algorithm (scan only the pairs
        a bound cannot settle, hand-written backward) in torch ops (:class:`CVTCFunction`, what CUDA
        runs); ``"auto"`` is that through autograd; ``"scan"`` scans all pairs through autograd (slow,
        the straightforward batched algorithm). Same result to float rounding.
    :return: ``[batch, out]`` spike times and a :class:`CVTCInfo`
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    if z.dim() != 2 or weight.dim() != 2 or z.shape[1] != weight.shape[1]:
        raise ValueError(f"expected z [batch, {weight.shape[-1]}] and weight [out, in], got {tuple(z.shape)}")
    z_never = default_z_never(beta) if z_never is None else float(z_never)
    beta_eff = 0.0 if mostafa else float(beta)
    batch, n_out = z.shape[0], weight.shape[0]
    if method in ("fast", "fused"):
        if fused_available(z, weight):
            method = "fused"
        elif method == "fused":
            raise ValueError(f"method 'fused' needs CPU tensors of one dtype, float32 or float64; got {z.device}/{z.dtype} "
                             f"and {weight.device}/{weight.dtype}")
        else:
            method = "torch"
    if method == "fused":
        info_sink: list[CVTCInfo] = []
        z_out = CVTCFusedFunction.apply(z, weight, beta_eff, z_never, info_sink)
        return z_out, info_sink[0]
    if method == "torch":
        sink: list[_FastState] = []
        z_out = CVTCFunction.apply(z, weight, beta_eff, z_never, sink)
        state = sink[0]
        return z_out, CVTCInfo(fired=state.fired, beta_only=state.beta_only, scanned=state.scanned)

    # Every input causal: W_C = sum_i w_i, N_C = sum_i w_i z_i (one GEMM)
    w_c = weight.sum(dim=1).expand(batch, n_out)
    n_c = z @ weight.t()
    with th.no_grad():
        z_sorted, order = _sort_rows(z.detach())
        if method == "scan":
            uncertain = th.ones(batch, n_out, dtype=th.bool, device=z.device)
        else:
            # V(z) <= V+(z_last) + beta z_last for z <= z_last, with V+ the monotone sum of the positive
            # terms; below 1 proves nothing fires before the last input, so C is every input.
            z_last = z_sorted[:, -1:]
            v_positive = (1 - z.detach() / z_last).clamp_min(0) @ weight.detach().clamp_min(0).t()
            uncertain = v_positive + beta_eff * z_last >= 1
        fired = w_c.detach() > 1 if beta_eff == 0 else th.ones_like(uncertain)
        rows, cols = uncertain.nonzero(as_tuple=True)
    if rows.numel() > 0:
        z_rows = z_sorted[rows] if not z.requires_grad else z[rows].gather(1, order[rows])
        weight_rows = th.take(weight, cols.unsqueeze(1) * weight.shape[1] + order[rows])  # w_j in arrival order
        w_scan, n_scan, fired_scan = _scan_prefixes(z_rows, weight_rows, beta_eff)
        w_c = w_c.index_put((rows, cols), w_scan)
        n_c = n_c.index_put((rows, cols), n_scan)
        fired = fired.index_put((rows, cols), fired_scan)

    w_minus_1 = w_c - 1
    if beta_eff > 0:
        root = th.sqrt((w_minus_1 * w_minus_1 + 4 * beta_eff * n_c).clamp_min(0))  # sqrt of Eq. 9's discriminant
        # Eq. 9; where W_C >= 1 its rationalised form 2 N_C / ((W_C - 1) + root) avoids cancellation
        stable = 2 * n_c / (w_minus_1.abs() + root).clamp_min(th.finfo(root.dtype).tiny)
        z_out = th.where(w_minus_1 >= 0, stable, (root - w_minus_1) / (2 * beta_eff))
    else:
        fired = fired & (w_minus_1.detach() > 0)
        z_out = th.where(fired, n_c / th.where(fired, w_minus_1, 1.0), z_never)  # Eq. 4
    info = CVTCInfo(fired=fired, beta_only=fired & (w_minus_1.detach() <= 0), scanned=rows.numel() / max(1, batch * n_out))
    return z_out, info


class CVTCLinear(nn.Module):
    """A fully connected layer of CVTC neurons: input spike times ``[batch, in]`` -> ``[batch, out]``.

    Times are in the z-domain (``z = exp(t)``). No bias (the paper's layers have none).

    :param in_features: inputs per sample
    :param out_features: neurons
    :param beta: the beta of Eq. 9 (``1e-3`` in the paper's code); ``0`` gives Mostafa's Eq. 4
    :param mostafa: evaluate with Eq. 4 (no beta term), as a chip would; switchable after training
    :param z_never: the finite spike time a never-firing neuron returns under Mostafa (default ``1/beta``)
    :param init: ``"normal"`` (mean 1.5/in, sd 5/in, the paper's MountainCar code) or ``"xavier_uniform"``
        (its CartPole code)
    :param method: ``"fast"`` (default: ``"fused"`` on CPU, ``"torch"`` on CUDA), ``"fused"``, ``"torch"``,
        ``"auto"`` or ``"scan"``, see :func:`cvtc_spike_times`
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        beta: float = DEFAULT_BETA,
        mostafa: bool = False,
        z_never: float | None = None,
        init: str = "normal",
        method: str = "fast",
    ) -> None:
        super().__init__()
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.beta, self.mostafa, self.method = float(beta), bool(mostafa), method
        self.z_never = default_z_never(self.beta) if z_never is None else float(z_never)
        self.weight = nn.Parameter(th.empty(self.out_features, self.in_features))
        self.reset_parameters(init)
        self.last_info: CVTCInfo | None = None

    def reset_parameters(self, init: str = "normal") -> None:
        """Initialise the weights.

        :param init: ``"normal"`` (mean 1.5/in, sd 5/in) or ``"xavier_uniform"``
        """
        if init == "normal":
            nn.init.normal_(self.weight, mean=1.5 / self.in_features, std=5.0 / self.in_features)
        elif init == "xavier_uniform":
            nn.init.xavier_uniform_(self.weight)
        else:
            raise ValueError(f"unknown init {init!r}; expected 'normal' or 'xavier_uniform'")

    @property
    def uses_beta(self) -> bool:
        """Whether the forward pass uses Eq. 9 (beta > 0 and not in Mostafa mode)."""
        return self.beta > 0 and not self.mostafa

    def forward(self, z: th.Tensor) -> th.Tensor:
        """Output spike times; the last :class:`CVTCInfo` is kept in ``last_info``.

        :param z: ``[batch, in_features]`` input spike times (z-domain, > 0)
        """
        z_out, self.last_info = cvtc_spike_times(z, self.weight, self.beta, self.mostafa, self.z_never, self.method)
        return z_out

    def weight_sum_penalty(self) -> th.Tensor:
        """Mostafa's regulariser sum_j relu(1 - sum_i w_ji): keeps every neuron able to fire without beta."""
        return F.relu(1 - self.weight.sum(dim=1)).sum()

    def extra_repr(self) -> str:
        mode = "mostafa" if not self.uses_beta else f"beta={self.beta:g}"
        return f"in_features={self.in_features}, out_features={self.out_features}, {mode}"


def spike_time(z: th.Tensor) -> th.Tensor:
    """Spike time ``t = ln z`` of a z-domain value.

    :param z: z-domain times (> 0)
    """
    return th.log(z)


__all__ = [
    "DEFAULT_BETA",
    "METHODS",
    "CVTCFunction",
    "CVTCFusedFunction",
    "CVTCInfo",
    "CVTCLinear",
    "cvtc_spike_times",
    "default_z_never",
    "fused_available",
    "spike_time",
]
