"""Fused CPU kernels of the CVTC layer (numba): the forward and backward passes of
:class:`sb3_snn.cvtc.layers.CVTCFusedFunction`.

Forward, one call of :func:`cvtc_forward` per layer. Per sample:

1. ``N = sum_i w_i z_i`` and ``P = sum_i w+_i z_i`` for every neuron (every input causal, and the
   bound): from the caller's two torch GEMMs for large layers, else dot products here;
2. the closed form with every input causal (paper Eq. 9, or Mostafa's Eq. 4 with the ``z_never``
   sentinel), vectorised over neurons in the input dtype, and the bound of
   :func:`sb3_snn.cvtc.layers.cvtc_spike_times` (V below 1 until the last input: every input causal),
   which settles most pairs;
3. only for the pairs it leaves, the exact causal set, in float64:

   - few such neurons (:func:`_bucket_scan`): no sort. The inputs go into coarse time buckets (from
     the floats' bit patterns, which order like positive floats); walking the buckets in order, a bound
     on V inside each bucket lets whole buckets be added unsorted, and only the bucket where the
     neuron may fire is sorted and scanned input by input;
   - many: one stable argsort of the sample's inputs (:func:`_argsort_positive`: a bucket pass on the
     bit patterns, then insertion sort) and, per neuron, running sums in arrival order to the first
     threshold crossing (:func:`_scan`).

It keeps per (sample, neuron) the spike time, ``1/D`` (``D = 2 beta z_out + W_C - 1``, the derivative
of the spike equation, ``W_C - 1`` under Mostafa, 0 for a neuron that never fires) and the threshold
(first non-causal input time, ``+inf`` when every input is causal), and the list of scanned pairs.

Backward: the implicit derivatives over each causal set, ``dz/dw_i = (z_i - z_out) / D`` and
``dz/dz_i = w_i / D`` for ``z_i < threshold``, 0 elsewhere. For large layers the caller computes them as
if every input were causal (``G = dL/dz_out / D`` and its row from :func:`cvtc_backward_weights`, then
torch GEMMs) and :func:`cvtc_backward_correct` removes the non-causal inputs of the scanned pairs; small
layers take one call of :func:`cvtc_backward_direct` (loops vectorised over inputs).

Exact: the same causal sets and spike times as the torch implementations up to float rounding (the
sums as if every input were causal round like a GEMM in the input dtype, the scans run in float64).
``fastmath`` only lets the dot products reassociate their sums (``{"reassoc"}``); ``error_model="numpy"``
gives IEEE division (no Python exceptions, so loops vectorise). Compiled on first use (tens of seconds
for float32 and float64) and cached on disk (``cache=True``): later processes load it in about a second.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: buckets larger than this are argsorted on their own before the insertion pass (bounds the worst case)
_LARGE_BUCKET = 32

#: the smallest positive normal float64 (guards divisions by a vanishing root)
_TINY = 2.2250738585072014e-308


@njit(cache=True)
def _insertion_sort(keys: np.ndarray, items: np.ndarray, n: int) -> None:  # pragma: no cover - numba
    """Sort ``keys[:n]`` ascending in place and move ``items[:n]`` alike; stable (ties keep their order).
    Fast on nearly sorted or short runs, which is how the kernels call it."""
    for p in range(1, n):
        k = keys[p]
        if keys[p - 1] <= k:
            continue
        item = items[p]
        q = p - 1
        while q >= 0 and keys[q] > k:
            keys[q + 1] = keys[q]
            items[q + 1] = items[q]
            q -= 1
        keys[q + 1] = k
        items[q + 1] = item


@njit(cache=True, error_model="numpy")
def _argsort_positive(
    values: np.ndarray, keys: np.ndarray, order: np.ndarray, sorted_keys: np.ndarray, counts: np.ndarray
) -> None:  # pragma: no cover - numba
    """Stable argsort of one row of positive floats.

    One bucket pass on the bit patterns (log-spaced buckets between the row's extremes), then insertion
    sort, in which elements only move within their bucket (a crowded bucket is argsorted on its own
    first, so the worst case stays O(n log n)). Rows with a non-positive value fall back to a merge sort.

    :param values: ``[n]`` the row
    :param keys: ``[n]`` its bit patterns as signed integers (monotone in the value for positive floats)
    :param order: ``[n]`` output, the row's indices in ascending order of value (ties by index)
    :param sorted_keys: ``[n]`` scratch of the type of ``keys``: the keys in that order
    :param counts: ``[n_buckets + 1]`` scratch, ``n_buckets`` a power of two
    """
    n = values.shape[0]
    kmin = np.int64(keys[0])
    kmax = kmin
    for i in range(1, n):  # two integer reductions: vectorised
        kmin = min(kmin, np.int64(keys[i]))
        kmax = max(kmax, np.int64(keys[i]))
    if kmin < 0:  # a negative value or -0.0: the bit patterns do not order
        order[:] = np.argsort(values, kind="mergesort")
        for p in range(n):
            sorted_keys[p] = keys[order[p]]
        return
    n_buckets = counts.shape[0] - 1
    span = kmax - kmin
    shift = 0
    while (span >> shift) >= n_buckets:
        shift += 1
    counts[:] = 0
    for i in range(n):
        counts[((np.int64(keys[i]) - kmin) >> shift) + 1] += 1
    largest = 0
    for q in range(1, n_buckets + 1):
        largest = max(largest, counts[q])
        counts[q] += counts[q - 1]  # counts[q] = start of bucket q
    for i in range(n):  # stable scatter; afterwards counts[q] = end of bucket q
        bq = (np.int64(keys[i]) - kmin) >> shift
        p = counts[bq]
        sorted_keys[p] = keys[i]
        order[p] = i
        counts[bq] = p + 1
    if largest > _LARGE_BUCKET:  # sort crowded buckets on their own so that insertion stays linear
        start = 0
        for q in range(n_buckets):
            end = counts[q]
            if end - start > _LARGE_BUCKET:
                local = np.argsort(sorted_keys[start:end], kind="mergesort")
                order[start:end] = order[start:end][local]
                sorted_keys[start:end] = sorted_keys[start:end][local]
            start = end
    _insertion_sort(sorted_keys, order, n)  # finishes the bucketed order (stable)


@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _dot_positive(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:  # pragma: no cover - numba
    """``sum_i w_i x_i`` and ``sum_i max(w_i, 0) x_i`` in the dtype of ``x`` (reassociated: vectorised)."""
    zero = x.dtype.type(0)
    total = zero
    positive = zero
    for i in range(x.shape[0]):
        total += w[i] * x[i]
        positive += max(w[i], zero) * x[i]
    return total, positive


@njit(cache=True, error_model="numpy", fastmath={"reassoc"})
def _sum_positive(w: np.ndarray) -> tuple[float, float]:  # pragma: no cover - numba
    """``sum_i w_i`` and ``sum_i max(w_i, 0)`` in the dtype of ``w`` (reassociated: vectorised)."""
    zero = w.dtype.type(0)
    total = zero
    positive = zero
    for i in range(w.shape[0]):
        total += w[i]
        positive += max(w[i], zero)
    return total, positive


@njit(cache=True, error_model="numpy")
def _closed_form(
    w_c: float, n_c: float, beta: float, z_never: float,
) -> tuple[float, float, bool, bool]:  # pragma: no cover - numba
    """Eq. 9 (``beta > 0``) or Eq. 4 (``beta == 0``) in float64 for one pair.

    :return: ``z_out``, ``1/D`` (0 where the neuron never fires), ``fired``, ``beta_only``
    """
    w_minus_1 = w_c - 1.0
    if beta > 0.0:
        # D = sqrt of the discriminant = 2 beta z_out + W_C - 1; Eq. 9 as 2 N_C / (D + (W_C - 1)) where
        # W_C >= 1 (no cancellation), else (D - (W_C - 1)) / (2 beta)
        root = math.sqrt(max(w_minus_1 * w_minus_1 + 4.0 * beta * n_c, 0.0))
        s = root + abs(w_minus_1)
        z_out = 2.0 * n_c / max(s, _TINY) if w_minus_1 >= 0.0 else s / (2.0 * beta)
        return z_out, 1.0 / max(root, _TINY), True, w_minus_1 <= 0.0
    if w_minus_1 > 0.0:
        inv_d = 1.0 / w_minus_1
        return n_c * inv_d, inv_d, True, False
    return z_never, 0.0, False, False


@njit(cache=True, error_model="numpy")
def _scan(
    z_sorted: np.ndarray, order: np.ndarray, weight_row: np.ndarray, beta: float, mostafa: bool
) -> tuple[float, float, float, bool]:  # pragma: no cover - numba
    """Causal set of one (sample, neuron) pair: running sums in arrival order to the first crossing.

    :param z_sorted: ``[n]`` the sample's inputs, ascending
    :param order: ``[n]`` their columns
    :param weight_row: ``[n]`` the neuron's weights
    :param mostafa: without a crossing at an input the neuron fires after the last input only if W > 1
        (with beta > 0 it always does)
    :return: W_C, N_C (float64), threshold (first non-causal input time, +inf if every input is causal)
        and whether the neuron fires
    """
    w_acc = 0.0
    n_acc = 0.0
    for m in range(z_sorted.shape[0]):
        z_next = np.float64(z_sorted[m])
        # V(z_next) >= 1 with the first m inputs causal, times z_next > 0 (the m-th input adds 0 at z_m)
        if w_acc * z_next - n_acc + (beta * z_next - 1.0) * z_next >= 0.0:
            return w_acc, n_acc, z_next, True
        w = np.float64(weight_row[order[m]])
        w_acc += w
        n_acc += w * z_next
    return w_acc, n_acc, math.inf, (w_acc > 1.0) if mostafa else True


@njit(cache=True, error_model="numpy")
def _bucket_sums(
    zb: np.ndarray, bucket: np.ndarray, weight: np.ndarray, neurons: np.ndarray, n_used: int, sums: np.ndarray
) -> None:  # pragma: no cover - numba
    """Per bucket and neuron: sum of weights, of weight times input and of positive weights (float64), in
    passes over the inputs that serve two neurons each.

    :param zb: ``[n]`` the sample's inputs; ``bucket [n]`` their buckets
    :param weight: ``[out, n]``; ``neurons`` the rows to sum
    :param sums: ``[>= len(neurons), 3, n_buckets]`` output, filled up to ``n_used``
    """
    n_neurons = neurons.shape[0]
    sums[:n_neurons, :, :n_used] = 0.0
    for u in range(0, n_neurons - 1, 2):  # two neurons per pass share the loads of the input and its bucket
        row_a = weight[neurons[u]]
        row_b = weight[neurons[u + 1]]
        acc_a = sums[u]
        acc_b = sums[u + 1]
        for i in range(zb.shape[0]):
            q = bucket[i]
            zi = np.float64(zb[i])
            w = np.float64(row_a[i])
            acc_a[0, q] += w
            acc_a[1, q] += w * zi
            acc_a[2, q] += max(w, 0.0)
            w = np.float64(row_b[i])
            acc_b[0, q] += w
            acc_b[1, q] += w * zi
            acc_b[2, q] += max(w, 0.0)
    if n_neurons % 2:  # the last (or only) neuron alone
        row = weight[neurons[n_neurons - 1]]
        acc = sums[n_neurons - 1]
        for i in range(zb.shape[0]):
            q = bucket[i]
            w = np.float64(row[i])
            acc[0, q] += w
            acc[1, q] += w * np.float64(zb[i])
            acc[2, q] += max(w, 0.0)


@njit(cache=True, error_model="numpy")
def _bucket_scan(
    zb: np.ndarray,
    kb: np.ndarray,
    weight_row: np.ndarray,
    beta: float,
    mostafa: bool,
    n_used: int,
    bucket: np.ndarray,
    edges: np.ndarray,
    sums: np.ndarray,
    members: np.ndarray,
    member_keys: np.ndarray,
) -> tuple[float, float, float, bool]:  # pragma: no cover - numba
    """Causal set of one (sample, neuron) pair without sorting the sample's inputs (see :func:`_scan`).

    The inputs are grouped into buckets of increasing time (``bucket``, from the bit patterns). Walking
    the buckets in order with W and N of the earlier ones, a bound on V at any input of the bucket,

        V(z_q) <= W - N / z_r + (sum of the bucket's positive weights) (1 - lo / hi) + beta hi

    (``lo <= z_q <= hi`` the bucket's range, ``z_r = hi`` if N >= 0 else ``lo``), below 1 proves that
    the neuron does not fire at an input of the bucket: its sums are added unsorted. Only a bucket where
    the bound reaches 1 is sorted (its members, by insertion) and scanned input by input. Same result
    as :func:`_scan` on the sorted row.

    :param zb: ``[n]`` the sample's inputs; ``kb`` their bit patterns
    :param weight_row: ``[n]`` the neuron's weights
    :param n_used: buckets in use; ``bucket [n]`` the bucket of every input, ``edges [5, n_used]``
        (float64) per bucket ``1/lo``, ``1/hi``, ``1 - lo/hi``, ``beta hi`` and ``-inf`` if it is empty
        (else 0)
    :param sums: ``[3, n_used]`` (float64) per bucket the sums of the neuron's weights, of weight times
        input, and of its positive weights (:func:`_bucket_sums`)
    :param members: ``[n]`` scratch, as ``member_keys [n]``, for the members of a bucket
    :return: W_C, N_C (float64), threshold (first non-causal input time, +inf if every input is causal)
        and whether the neuron fires
    """
    n = zb.shape[0]
    w_bucket = sums[0]
    n_bucket = sums[1]
    p_bucket = sums[2]
    w_acc = 0.0
    n_acc = 0.0
    for q in range(n_used):
        # edges: [0] 1 / lower edge, [1] 1 / upper edge, [2] 1 - lower / upper, [3] beta upper, [4] -inf for an
        # empty bucket (passes the test without a branch that the predictor cannot learn), else 0
        ratio = n_acc * (edges[1, q] if n_acc >= 0.0 else edges[0, q])
        spread = p_bucket[q] * edges[2, q]
        bound = w_acc - ratio + spread + edges[3, q] + edges[4, q]
        if bound < 1.0 - 1e-12 * (1.0 + abs(w_acc) + abs(ratio) + spread + edges[3, q]):
            w_acc += w_bucket[q]
            n_acc += n_bucket[q]
            continue
        # the neuron may fire at an input of this bucket: its members in order, then input by input
        c = 0
        for i in range(n):
            if bucket[i] == q:
                members[c] = i
                member_keys[c] = kb[i]
                c += 1
        if c > _LARGE_BUCKET:
            local = np.argsort(member_keys[:c], kind="mergesort")
            members[:c] = members[:c][local]
        else:
            _insertion_sort(member_keys, members, c)
        for t in range(c):
            i = members[t]
            z_next = np.float64(zb[i])
            if w_acc * z_next - n_acc + (beta * z_next - 1.0) * z_next >= 0.0:
                return w_acc, n_acc, z_next, True
            w = np.float64(weight_row[i])
            w_acc += w
            n_acc += w * z_next
    return w_acc, n_acc, math.inf, (w_acc > 1.0) if mostafa else True


@njit(cache=True, error_model="numpy")
def cvtc_forward(  # noqa: C901 - one numba kernel: the whole batch loop compiles to one native function
    z: np.ndarray,
    keys: np.ndarray,
    weight: np.ndarray,
    work: np.ndarray,
    compute_sums: bool,
    beta: float,
    z_never: float,
    z_out: np.ndarray,
    flags: np.ndarray,
    pairs: np.ndarray,
    bucket_max_neurons: int,
) -> int:  # pragma: no cover - numba
    """Spike times of a CVTC layer, written into the output arrays.

    :param z: ``[batch, in]`` input spike times (z-domain, > 0), C-contiguous float32 or float64
    :param keys: ``z`` viewed as int32 (float32) or int64 (float64): the sort reads the bit patterns
    :param weight: ``[out, in]``, C-contiguous, the dtype of ``z``
    :param work: ``[4, batch, out]``, the dtype of ``z``: in, ``z @ weight.T`` (N_C if every input is
        causal) and ``z @ weight.clamp(min=0).T`` (for the bound), the caller's GEMMs; out, ``1/D`` (0 where
        the neuron never fires) and the threshold (first non-causal input time, +inf when every input is
        causal)
    :param compute_sums: fill ``work[0]`` and ``work[1]`` here by dot products (layers with few neurons,
        for which a GEMM call costs more than it computes)
    :param beta: beta of Eq. 9; ``0`` for Mostafa's Eq. 4
    :param z_never: the spike time of a neuron that never fires (Mostafa only)
    :param z_out: ``[batch, out]`` output, the dtype of ``z``
    :param flags: ``[2, batch, out]`` bool output: fired, and fired only thanks to the beta term (W_C <= 1)
    :param pairs: ``[batch * out]`` output: ``b * out + j`` of every scanned pair, in its first entries
    :param bucket_max_neurons: a sample with at most this many pairs to scan finds their causal sets by
        :func:`_bucket_scan` (no sort); with more, one sort of its inputs serves them all (:func:`_scan`)
    :return: the number of (sample, neuron) pairs the bound did not settle (scanned)
    """
    batch, n_in = z.shape
    n_out = weight.shape[0]
    mostafa = beta == 0.0
    sums = work
    inv_d = work[2]
    threshold = work[3]
    fired = flags[0]
    beta_only = flags[1]
    if compute_sums:
        for b in range(batch):
            for j in range(n_out):
                sums[0, b, j], sums[1, b, j] = _dot_positive(z[b], weight[j])
    # per neuron, every input causal: W - 1, and what the closed form needs of it
    w_minus_1 = np.empty(n_out)
    w_pos = np.empty(n_out)
    abs_w_minus_1 = np.empty(n_out)
    scale = np.empty(n_out)  # beta > 0: 2 where W >= 1 (2 N / S), else 0; Mostafa: 1 / (W - 1) or 0
    offset = np.empty(n_out)  # beta > 0: 1 / (2 beta) where W < 1 (S / (2 beta)), else 0
    fired_all = np.empty(n_out, np.bool_)
    beta_only_all = np.empty(n_out, np.bool_)
    for j in range(n_out):
        w_total, w_positive = _sum_positive(weight[j])
        wm1 = np.float64(w_total) - 1.0
        w_minus_1[j] = wm1
        w_pos[j] = np.float64(w_positive)
        abs_w_minus_1[j] = abs(wm1)
        if mostafa:
            fired_all[j] = wm1 > 0.0
            beta_only_all[j] = False
            scale[j] = 1.0 / wm1 if wm1 > 0.0 else 0.0
            offset[j] = 0.0
        else:
            fired_all[j] = True
            beta_only_all[j] = wm1 <= 0.0
            scale[j] = 2.0 if wm1 >= 0.0 else 0.0
            offset[j] = 0.0 if wm1 >= 0.0 else 0.5 / beta
    n_buckets = 16  # the sort's buckets: a power of two >= n_in
    while n_buckets < n_in:
        n_buckets *= 2
    counts = np.empty(n_buckets + 1, np.int64)
    order = np.empty(n_in, np.int64)
    sorted_keys = np.empty(n_in, keys.dtype)
    z_sorted = sorted_keys.view(z.dtype)  # the sorted inputs: the keys are their bit patterns
    n_coarse = 16  # _bucket_scan's buckets: a power of two >= n_in / 16 (fewer: a shorter walk per neuron)
    while 16 * n_coarse < n_in:
        n_coarse *= 2
    bucket = np.empty(n_in, np.int64)
    coarse_counts = np.empty(n_coarse, np.int64)
    edge_keys = np.empty(n_coarse + 1, keys.dtype)
    edges = np.empty((5, n_coarse))
    bucket_sums = np.empty((max(1, min(bucket_max_neurons, n_out)), 3, n_coarse))
    members = np.empty(n_in, np.int64)
    member_keys = np.empty(n_in, keys.dtype)
    candidates = np.empty(n_out, np.int64)
    # the closed form with every input causal, in the dtype of z (vectorised over neurons)
    zero = z.dtype.type(0)
    one = z.dtype.type(1)
    tiny = z.dtype.type(1e-30)
    never = z.dtype.type(z_never)
    four_beta = z.dtype.type(4.0 * beta)
    wm1_t = w_minus_1.astype(z.dtype)
    abs_wm1_t = abs_w_minus_1.astype(z.dtype)
    scale_t = scale.astype(z.dtype)
    offset_t = offset.astype(z.dtype)
    n_scanned = 0
    for b in range(batch):
        row_n = sums[0, b]
        row_p = sums[1, b]
        out_z = z_out[b]
        out_inv_d = inv_d[b]
        if mostafa:
            for j in range(n_out):
                out_z[j] = row_n[j] * scale_t[j] if fired_all[j] else never
                out_inv_d[j] = scale_t[j]
        else:
            for j in range(n_out):
                nj = row_n[j]
                wm1 = wm1_t[j]
                root = math.sqrt(max(wm1 * wm1 + four_beta * nj, zero))
                s = root + abs_wm1_t[j]
                # 2 N / S where W >= 1, S / (2 beta) elsewhere (S = root + |W - 1|)
                out_z[j] = scale_t[j] * nj / max(s, tiny) + offset_t[j] * s
                out_inv_d[j] = one / max(root, tiny)
        out_threshold = threshold[b]
        out_fired = fired[b]
        out_beta_only = beta_only[b]
        for j in range(n_out):
            out_threshold[j] = math.inf
            out_fired[j] = fired_all[j]
            out_beta_only[j] = beta_only_all[j]
        # The bound: V(z) <= V+(z_last) + beta z_last for z <= z_last (V+: the positive terms, monotone);
        # below 1 it proves that nothing fires before the last input. Times z_last:
        # sum_i w+_i z_i > (sum_i w+_i - 1 + beta z_last) z_last
        zb = z[b]
        kb = keys[b]
        k_last = kb[0]
        k_first = kb[0]
        for i in range(1, n_in):  # integer reductions over the bit patterns: vectorised
            k_last = max(k_last, kb[i])
            k_first = min(k_first, kb[i])
        z_last = zb[0]
        if k_last >= 0:
            for i in range(n_in):
                if kb[i] == k_last:
                    z_last = zb[i]
                    break
        else:  # no positive input
            for i in range(n_in):
                z_last = max(z_last, zb[i])
        z_last_64 = np.float64(z_last)
        slack = beta * z_last_64 - 1.0
        n_uncertain = 0  # a count first (vectorised): most samples have none
        for j in range(n_out):
            n_uncertain += np.float64(row_p[j]) <= (w_pos[j] + slack) * z_last_64
        if n_uncertain == 0:
            continue
        c = 0  # the neurons the bound leaves
        for j in range(n_out):
            if np.float64(row_p[j]) <= (w_pos[j] + slack) * z_last_64:
                candidates[c] = j
                c += 1
        bucketed = c <= bucket_max_neurons and k_first > 0  # the bucket bound needs inputs > 0
        n_used = 0
        if bucketed:  # group the inputs into coarse buckets of increasing time
            k_min = np.int64(k_first)
            span = np.int64(k_last) - k_min
            shift = 0
            while (span >> shift) >= n_coarse:
                shift += 1
            n_used = int((span >> shift) + 1)
            coarse_counts[:n_used] = 0
            for i in range(n_in):
                bq = (np.int64(kb[i]) - k_min) >> shift
                bucket[i] = bq
                coarse_counts[bq] += 1
            for q in range(n_used + 1):
                edge_keys[q] = min(k_min + (q << shift), np.int64(k_last))
            edge_values = edge_keys.view(z.dtype)
            for q in range(n_used):  # the bucket's range [lo, hi], lo > 0, and what the bound needs of it
                lo = np.float64(edge_values[q])
                hi = np.float64(edge_values[q + 1])
                edges[0, q] = 1.0 / lo
                edges[1, q] = 1.0 / hi
                edges[2, q] = 1.0 - lo / hi
                edges[3, q] = beta * hi
                edges[4, q] = -math.inf if coarse_counts[q] == 0 else 0.0
            _bucket_sums(zb, bucket, weight, candidates[:c], n_used, bucket_sums)
        else:
            _argsort_positive(zb, kb, order, sorted_keys, counts)
        for t in range(c):
            j = candidates[t]
            pairs[n_scanned] = b * n_out + j
            n_scanned += 1
            if bucketed:
                w_c, n_c, thr, fires = _bucket_scan(zb, kb, weight[j], beta, mostafa, n_used, bucket, edges, bucket_sums[t],
                                                    members, member_keys)
            else:
                w_c, n_c, thr, fires = _scan(z_sorted, order, weight[j], beta, mostafa)
            if fires:
                z_j, inv_d_j, fired_j, beta_only_j = _closed_form(w_c, n_c, beta, z_never)
            else:
                z_j, inv_d_j, fired_j, beta_only_j = z_never, 0.0, False, False
            out_z[j] = z_j
            out_inv_d[j] = inv_d_j
            out_fired[j] = fired_j
            out_beta_only[j] = beta_only_j
            out_threshold[j] = thr
    return n_scanned


@njit(cache=True, error_model="numpy")
def cvtc_backward_weights(
    grad_out: np.ndarray, work: np.ndarray, z_out: np.ndarray, g: np.ndarray,
) -> None:  # pragma: no cover - numba
    """``G = dL/dz_out / D`` per pair, and the term that turns ``G^T z`` into the weight gradient.

    :param grad_out: ``[batch, out]`` dL/dz_out
    :param work: ``[4, batch, out]`` from :func:`cvtc_forward` (``1/D`` in ``work[2]``)
    :param z_out: ``[batch, out]`` the spike times
    :param g: ``[batch + 1, out]`` output: ``G``, and in the last row ``-sum_b G z_out``, so that
        ``G^T z`` plus that row (as a column) is ``sum_b G (z_i - z_out)`` for every input
    """
    batch, n_out = grad_out.shape
    inv_d = work[2]
    last = g[batch]
    last[:] = 0
    for b in range(batch):
        row = g[b]
        go = grad_out[b]
        idb = inv_d[b]
        zo = z_out[b]
        for j in range(n_out):
            gj = go[j] * idb[j]
            row[j] = gj
            last[j] -= gj * zo[j]


@njit(cache=True, error_model="numpy")
def cvtc_backward_correct(
    z: np.ndarray,
    weight: np.ndarray,
    z_out: np.ndarray,
    g: np.ndarray,
    work: np.ndarray,
    pairs: np.ndarray,
    grad_z: np.ndarray,
    grad_w: np.ndarray,
    need_z: bool,
    need_w: bool,
) -> None:  # pragma: no cover - numba
    """Remove the non-causal inputs (``z_i >= threshold``) of the scanned pairs from gradients computed
    as if every input were causal: ``grad_w[j, i] -= G (z_bi - z_out)``, ``grad_z[b, i] -= G w_ji``.

    :param z: ``[batch, in]``
    :param weight: ``[out, in]``
    :param z_out: ``[batch, out]``
    :param g: ``[batch(+1), out]`` ``G`` from :func:`cvtc_backward_weights`
    :param work: ``[4, batch, out]`` from :func:`cvtc_forward` (the threshold in ``work[3]``)
    :param pairs: ``b * out + j`` of the scanned pairs (from the forward pass)
    :param grad_z: ``[batch, in]``, corrected in place if ``need_z``
    :param grad_w: ``[out, in]``, corrected in place if ``need_w``
    """
    n_in = z.shape[1]
    n_out = weight.shape[0]
    zero = z.dtype.type(0)
    threshold = work[3]
    for pair in pairs:
        b = pair // n_out
        j = pair - b * n_out
        thr = threshold[b, j]
        gj = g[b, j]
        if thr == math.inf or gj == zero:
            continue
        zb = z[b]
        if need_w:
            c = gj * z_out[b, j]
            acc = grad_w[j]
            for i in range(n_in):
                zi = zb[i]
                acc[i] -= (gj * zi - c) if zi >= thr else zero
        if need_z:
            acc = grad_z[b]
            row = weight[j]
            for i in range(n_in):
                acc[i] -= g[b, j] * row[i] if zb[i] >= thr else zero


@njit(cache=True, error_model="numpy")
def cvtc_backward_direct(
    z: np.ndarray,
    weight: np.ndarray,
    z_out: np.ndarray,
    work: np.ndarray,
    grad_out: np.ndarray,
    grad_z: np.ndarray,
    grad_w: np.ndarray,
    need_z: bool,
    need_w: bool,
) -> None:  # pragma: no cover - numba
    """The whole backward pass without GEMMs (layers with few neurons): with ``G = dL/dz_out / D`` and the
    causal inputs ``z_i < threshold``, ``grad_w[j, i] = sum_b G (z_bi - z_out_bj)`` and
    ``grad_z[b, i] = sum_j G w_ji``; loops vectorised over inputs.

    :param z: ``[batch, in]``
    :param weight: ``[out, in]``
    :param z_out: ``[batch, out]``
    :param work: ``[4, batch, out]`` from :func:`cvtc_forward` (``1/D`` and the threshold)
    :param grad_out: ``[batch, out]`` dL/dz_out
    :param grad_z: ``[batch, in]`` output if ``need_z``
    :param grad_w: ``[out, in]`` output if ``need_w``
    """
    batch, n_in = z.shape
    n_out = weight.shape[0]
    zero = z.dtype.type(0)
    inv_d = work[2]
    threshold = work[3]
    if need_w:
        for j in range(n_out):
            acc = grad_w[j]
            acc[:] = zero
            for b in range(batch):
                gj = grad_out[b, j] * inv_d[b, j]
                if gj == zero:
                    continue
                c = gj * z_out[b, j]
                thr = threshold[b, j]
                zb = z[b]
                for i in range(n_in):
                    zi = zb[i]
                    acc[i] += (gj * zi - c) if zi < thr else zero
    if need_z:
        for b in range(batch):
            acc = grad_z[b]
            acc[:] = zero
            zb = z[b]
            for j in range(n_out):
                gj = grad_out[b, j] * inv_d[b, j]
                if gj == zero:
                    continue
                thr = threshold[b, j]
                row = weight[j]
                for i in range(n_in):
                    acc[i] += gj * row[i] if zb[i] < thr else zero
