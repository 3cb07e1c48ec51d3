// Max pooling (k x k, stride, padding that never wins; torch's first maximum on ties) and global
// average pooling over NCHW planes, with their gradients. Gradients are gathers (each input
// collects from the windows that contain it), so overlapping windows (3x3/2) need no atomics.

// The uniform Pool, NONE and WORKGROUP are prepended from pool.rs.

@group(0) @binding(0) var<uniform> pl: Pool;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
// per output, the in-plane index of its window's maximum (NONE where the window is all padding)
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>;
@group(0) @binding(4) var<storage, read_write> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn max_pool(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let o = flat_index(wid, groups, lid);
    let outputs = pl.out_h * pl.out_w;
    if (o >= pl.planes * outputs) {
        return;
    }
    let base = (o / outputs) * pl.height * pl.width;
    let oy = (o % outputs) / pl.out_w;
    let ox = o % pl.out_w;
    var best = -0x1.fffffep+127f; // -f32::MAX (Tint refuses a decimal that rounds past it)
    var best_at = NONE;
    for (var ky = 0u; ky < pl.k; ky++) {
        let iy = i32(oy * pl.stride + ky) - i32(pl.pad);
        for (var kx = 0u; kx < pl.k; kx++) {
            let ix = i32(ox * pl.stride + kx) - i32(pl.pad);
            if (iy >= 0 && ix >= 0 && iy < i32(pl.height) && ix < i32(pl.width)) {
                let at = u32(iy) * pl.width + u32(ix);
                let v = x[base + at];
                if (best_at == NONE || v > best) {
                    best = v;
                    best_at = at;
                }
            }
        }
    }
    y[o] = select(best, 0.0, best_at == NONE);
    argmax[o] = best_at;
}

// First window index along an axis that covers input position i: ceil((i + pad - k + 1) / s).
fn first_window(i: u32) -> u32 {
    let lowest = i32(i + pl.pad) - i32(pl.k) + 1;
    if (lowest <= 0) {
        return 0u;
    }
    return (u32(lowest) + pl.stride - 1u) / pl.stride;
}

@compute @workgroup_size(WORKGROUP)
fn max_pool_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, groups, lid);
    let plane = pl.height * pl.width;
    if (i >= pl.planes * plane) {
        return;
    }
    let p = i / plane;
    let at = i % plane;
    let iy = at / pl.width;
    let ix = at % pl.width;
    var sum = 0.0;
    let last_y = min((iy + pl.pad) / pl.stride + 1u, pl.out_h);
    let last_x = min((ix + pl.pad) / pl.stride + 1u, pl.out_w);
    for (var oy = first_window(iy); oy < last_y; oy++) {
        for (var ox = first_window(ix); ox < last_x; ox++) {
            let o = (p * pl.out_h + oy) * pl.out_w + ox;
            if (argmax[o] == at) {
                sum += dy[o];
            }
        }
    }
    dx[i] = sum;
}

var<workgroup> sums: array<f32, WORKGROUP>;

// One workgroup per plane: its mean, as a strided sum then a tree.
@compute @workgroup_size(WORKGROUP)
fn avg_pool(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = flat_group(wid, groups);
    if (p >= pl.planes) {
        return;
    }
    let plane = pl.height * pl.width;
    var acc = 0.0;
    for (var i = lid; i < plane; i += WORKGROUP) {
        acc += x[p * plane + i];
    }
    sums[lid] = acc;
    workgroupBarrier();
    for (var s = WORKGROUP / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            sums[lid] += sums[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        y[p] = sums[0] / f32(plane);
    }
}

@compute @workgroup_size(WORKGROUP)
fn avg_pool_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, groups, lid);
    let plane = pl.height * pl.width;
    if (i >= pl.planes * plane) {
        return;
    }
    dx[i] = dy[i / plane] / f32(plane);
}
