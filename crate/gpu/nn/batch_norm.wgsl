// BatchNorm2d over NCHW, PyTorch's semantics (as crate/model/batch_norm.rs): training mode
// normalises with the batch mean and biased variance and moves the running statistics by
// momentum (the running variance unbiased); evaluation mode uses the running statistics.
//
// Statistics are two-level reductions: a grid of (chunk, channel) workgroups each sums 4096
// values (16 per thread, then a tree), one workgroup per channel sums the chunks (a tree again).
// The variance is the corrected two-pass form: with m the first pass's mean,
//   lo = mean(x - m), var = mean((x - m)^2) - lo^2,
// and the mean is kept as the pair (m, lo) (x - m is exact for x near m), so a large mean with a
// small spread loses nothing to f32.

// The uniform Norm, PER_THREAD, the reduction kinds K_* and WORKGROUP are prepended from
// batch_norm.rs.

@group(0) @binding(0) var<uniform> nm: Norm;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
// y in the forward bind group, dy in the backward one
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<storage, read_write> gamma: array<f32>;
@group(0) @binding(5) var<storage, read_write> beta: array<f32>;
@group(0) @binding(6) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbeta: array<f32>;
// per channel: running mean, running variance, mean (m, lo), biased variance, 1 / sqrt(var + eps);
// then two partial sums per (channel, chunk)
@group(0) @binding(8) var<storage, read_write> state: array<f32>;

fn running_mean(c: u32) -> u32 { return c; }
fn running_var(c: u32) -> u32 { return nm.channels + c; }
fn mean_hi(c: u32) -> u32 { return 2u * nm.channels + c; }
fn mean_lo(c: u32) -> u32 { return 3u * nm.channels + c; }
fn variance(c: u32) -> u32 { return 4u * nm.channels + c; }
fn inv_std(c: u32) -> u32 { return 5u * nm.channels + c; }
fn partial(c: u32, chunk: u32) -> u32 { return 6u * nm.channels + 2u * (c * nm.chunks + chunk); }

// Flat index of the i-th of channel c's batch * plane values.
fn element(c: u32, i: u32) -> u32 {
    return ((i / nm.plane) * nm.channels + c) * nm.plane + i % nm.plane;
}

fn channel_of(e: u32) -> u32 {
    return (e / nm.plane) % nm.channels;
}

fn x_hat(c: u32, e: u32) -> f32 {
    return ((x[e] - state[mean_hi(c)]) - state[mean_lo(c)]) * state[inv_std(c)];
}

fn x_hat_eval(c: u32, e: u32) -> f32 {
    return (x[e] - state[running_mean(c)]) / sqrt(state[running_var(c)] + nm.eps);
}

// The two values element e of channel c adds to the reduction `kind`.
fn terms(kind: u32, c: u32, e: u32) -> vec2<f32> {
    switch kind {
        case K_SUM: {
            return vec2<f32>(x[e], 0.0);
        }
        case K_CENTERED: {
            let d = x[e] - state[mean_hi(c)];
            return vec2<f32>(d, d * d);
        }
        case K_GRAD: {
            return vec2<f32>(y[e], y[e] * x_hat(c, e));
        }
        default: {
            return vec2<f32>(y[e], y[e] * x_hat_eval(c, e));
        }
    }
}

var<workgroup> sums: array<vec2<f32>, WORKGROUP>;

// Tree sum of sums[0..WORKGROUP] into sums[0].
fn tree(lid: u32) {
    workgroupBarrier();
    for (var s = WORKGROUP / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            sums[lid] += sums[lid + s];
        }
        workgroupBarrier();
    }
}

// Workgroup (chunk, c): the chunk's two sums into its partial slot.
fn partial_sums(kind: u32, lid: u32, wid: vec3<u32>) {
    let c = wid.y;
    let first = wid.x * WORKGROUP * PER_THREAD;
    var acc = vec2<f32>(0.0);
    for (var r = 0u; r < PER_THREAD; r++) {
        let i = first + r * WORKGROUP + lid;
        if (i < nm.count) {
            acc += terms(kind, c, element(c, i));
        }
    }
    sums[lid] = acc;
    tree(lid);
    if (lid == 0u) {
        let at = partial(c, wid.x);
        state[at] = sums[0].x;
        state[at + 1u] = sums[0].y;
    }
}

// Workgroup c: the sum of channel c's partial pairs, left in sums[0].
fn channel_total(lid: u32, c: u32) {
    var acc = vec2<f32>(0.0);
    for (var chunk = lid; chunk < nm.chunks; chunk += WORKGROUP) {
        let at = partial(c, chunk);
        acc += vec2<f32>(state[at], state[at + 1u]);
    }
    sums[lid] = acc;
    tree(lid);
}

@compute @workgroup_size(WORKGROUP)
fn sum_x(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    partial_sums(K_SUM, lid, wid);
}

@compute @workgroup_size(WORKGROUP)
fn mean(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    channel_total(lid, wid.x);
    if (lid == 0u) {
        state[mean_hi(wid.x)] = sums[0].x / f32(nm.count);
    }
}

@compute @workgroup_size(WORKGROUP)
fn sum_centered(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    partial_sums(K_CENTERED, lid, wid);
}

// The batch statistics, and the running ones moved towards them.
@compute @workgroup_size(WORKGROUP)
fn statistics(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let c = wid.x;
    channel_total(lid, c);
    if (lid == 0u) {
        let n = f32(nm.count);
        let lo = sums[0].x / n;
        let var_b = max(sums[0].y / n - lo * lo, 0.0);
        state[mean_lo(c)] = lo;
        state[variance(c)] = var_b;
        state[inv_std(c)] = 1.0 / sqrt(var_b + nm.eps);
        let keep = 1.0 - nm.momentum;
        let mean_c = state[mean_hi(c)] + lo;
        state[running_mean(c)] = keep * state[running_mean(c)] + nm.momentum * mean_c;
        // PyTorch keeps the unbiased variance as the running estimate
        let unbiased = var_b * n / max(n - 1.0, 1.0);
        state[running_var(c)] = keep * state[running_var(c)] + nm.momentum * unbiased;
    }
}

@compute @workgroup_size(WORKGROUP)
fn normalize(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = flat_index(wid, groups, lid);
    if (e >= nm.count * nm.channels) {
        return;
    }
    let c = channel_of(e);
    y[e] = x_hat(c, e) * gamma[c] + beta[c];
}

@compute @workgroup_size(WORKGROUP)
fn normalize_eval(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = flat_index(wid, groups, lid);
    if (e >= nm.count * nm.channels) {
        return;
    }
    let c = channel_of(e);
    y[e] = x_hat_eval(c, e) * gamma[c] + beta[c];
}

@compute @workgroup_size(WORKGROUP)
fn sum_grad(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    partial_sums(K_GRAD, lid, wid);
}

@compute @workgroup_size(WORKGROUP)
fn sum_grad_eval(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    partial_sums(K_GRAD_EVAL, lid, wid);
}

// dbeta = sum(g), dgamma = sum(g x_hat).
@compute @workgroup_size(WORKGROUP)
fn param_grads(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    channel_total(lid, wid.x);
    if (lid == 0u) {
        dbeta[wid.x] = sums[0].x;
        dgamma[wid.x] = sums[0].y;
    }
}

// dx = gamma / sigma (g - mean(g) - x_hat mean(g x_hat)).
@compute @workgroup_size(WORKGROUP)
fn input_grad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = flat_index(wid, groups, lid);
    if (e >= nm.count * nm.channels) {
        return;
    }
    let c = channel_of(e);
    let n = f32(nm.count);
    let k = gamma[c] * state[inv_std(c)];
    dx[e] = k * (y[e] - dbeta[c] / n - x_hat(c, e) * (dgamma[c] / n));
}

// With fixed (running) statistics the normalisation is affine: dx = g gamma / sigma.
@compute @workgroup_size(WORKGROUP)
fn input_grad_eval(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = flat_index(wid, groups, lid);
    if (e >= nm.count * nm.channels) {
        return;
    }
    let c = channel_of(e);
    dx[e] = y[e] * gamma[c] / sqrt(state[running_var(c)] + nm.eps);
}
