// Convolution of NCHW x with (Cout, Cin, k, k) weights, stride and zero padding, and both of its
// gradients, each an implicit GEMM on tile.wgsl: the im2col operand is gathered straight into
// workgroup memory one 16-deep slice at a time, so no column buffer ever exists.
//   forward       y[co, (b, oy, ox)] = sum_(ci, ky, kx) w[co, (ci, ky, kx)] x_col[(ci, ky, kx), (b, oy, ox)] + bias[co]
//   input_grad    dx[ci, (b, iy, ix)] = sum_(co, ky, kx) w[co, ci, ky, kx] dy[b, co, (iy + pad - ky) / s, (ix + pad - kx) / s]
//                 (terms only where the division is exact and lands inside dy)
//   weight_grad   dw[co, (ci, ky, kx)] = sum_(b, oy, ox) dy[b, co, oy, ox] x_col[(ci, ky, kx), (b, oy, ox)]: a
//                 reduction over the whole batch, split along K into `splits` partial tiles (grid z) of
//                 `chunk` terms each, summed by weight_reduce. With a bias, one more column of ones gives db.
// The output dimension of each product runs over batch and pixels together, so deep layers with
// small images still fill the 64-wide tiles; its tiles wrap from grid x into z past 65535.

// The uniform Conv, the tile sizes TILE and DEPTH and WORKGROUP are prepended from conv.rs.

@group(0) @binding(0) var<uniform> cv: Conv;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> bias: array<f32>;
// y in the forward bind group, dy in the backward one
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> dw: array<f32>;
@group(0) @binding(7) var<storage, read_write> db: array<f32>;
@group(0) @binding(8) var<storage, read_write> partials: array<f32>;

// x at tap r = (ci, ky, kx) of the window whose top-left corner is (iy0, ix0) in image `base`; 0 in
// the padding.
fn x_tap(base: u32, r: u32, iy0: i32, ix0: i32) -> f32 {
    let taps = cv.k * cv.k;
    let ci = r / taps;
    let t = r % taps;
    let iy = iy0 + i32(t / cv.k);
    let ix = ix0 + i32(t % cv.k);
    if (iy < 0 || ix < 0 || iy >= i32(cv.height) || ix >= i32(cv.width)) {
        return 0.0;
    }
    return x[base + (ci * cv.height + u32(iy)) * cv.width + u32(ix)];
}

@compute @workgroup_size(WORKGROUP)
fn forward(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let m0 = wid.y * TILE;
    let n0 = (wid.z * groups.x + wid.x) * TILE;
    let depth = cv.cin * cv.k * cv.k;
    let pixels = cv.out_h * cv.out_w;
    let total = cv.batch * pixels;
    // this thread gathers B's column n0 + lid % 64 in every slice
    let col = n0 + lid % 64u;
    let b = col / pixels;
    let p = col % pixels;
    let iy0 = i32((p / cv.out_w) * cv.stride) - i32(cv.pad);
    let ix0 = i32((p % cv.out_w) * cv.stride) - i32(cv.pad);
    let x_base = b * cv.cin * cv.height * cv.width;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < depth; k0 += DEPTH) {
        for (var r = 0u; r < 4u; r++) {
            let m = lid / 16u + 16u * r;
            let k = lid % 16u;
            var v = 0.0;
            if (m0 + m < cv.cout && k0 + k < depth) {
                v = weight[(m0 + m) * depth + k0 + k];
            }
            stage_a(m, k, v);
        }
        for (var r = 0u; r < 4u; r++) {
            let k = lid / 64u + 4u * r;
            var v = 0.0;
            if (col < total && k0 + k < depth) {
                v = x_tap(x_base, k0 + k, iy0, ix0);
            }
            stage_b(k, lid % 64u, v);
        }
        workgroupBarrier();
        multiply_slice(&acc, lid / 16u, lid % 16u);
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + (lid / 16u) * 4u + i;
        if (m >= cv.cout) {
            continue;
        }
        var shift = 0.0;
        if (cv.has_bias == 1u) {
            shift = bias[m];
        }
        for (var j = 0u; j < 4u; j++) {
            let n = n0 + (lid % 16u) * 4u + j;
            if (n < total) {
                y[((n / pixels) * cv.cout + m) * pixels + n % pixels] = acc[i][j] + shift;
            }
        }
    }
}

@compute @workgroup_size(WORKGROUP)
fn input_grad(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let m0 = wid.y * TILE;
    let n0 = (wid.z * groups.x + wid.x) * TILE;
    let taps = cv.k * cv.k;
    let depth = cv.cout * taps;
    let plane = cv.height * cv.width;
    let total = cv.batch * plane;
    let col = n0 + lid % 64u;
    let b = col / plane;
    let p = col % plane;
    let iy = i32(p / cv.width) + i32(cv.pad);
    let ix = i32(p % cv.width) + i32(cv.pad);
    let s = i32(cv.stride);
    let dy_base = b * cv.cout * cv.out_h * cv.out_w;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < depth; k0 += DEPTH) {
        for (var r = 0u; r < 4u; r++) {
            let m = lid / 16u + 16u * r;
            let k = k0 + lid % 16u;
            var v = 0.0;
            if (m0 + m < cv.cin && k < depth) {
                v = weight[((k / taps) * cv.cin + m0 + m) * taps + k % taps];
            }
            stage_a(m, lid % 16u, v);
        }
        for (var r = 0u; r < 4u; r++) {
            let kr = lid / 64u + 4u * r;
            let k = k0 + kr;
            var v = 0.0;
            if (col < total && k < depth) {
                let co = k / taps;
                let t = k % taps;
                let ty = iy - i32(t / cv.k);
                let tx = ix - i32(t % cv.k);
                if (ty >= 0 && tx >= 0 && ty % s == 0 && tx % s == 0) {
                    let oy = u32(ty / s);
                    let ox = u32(tx / s);
                    if (oy < cv.out_h && ox < cv.out_w) {
                        v = y[dy_base + (co * cv.out_h + oy) * cv.out_w + ox];
                    }
                }
            }
            stage_b(kr, lid % 64u, v);
        }
        workgroupBarrier();
        multiply_slice(&acc, lid / 16u, lid % 16u);
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + (lid / 16u) * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let n = n0 + (lid % 16u) * 4u + j;
            if (m < cv.cin && n < total) {
                dx[((n / plane) * cv.cin + m) * plane + n % plane] = acc[i][j];
            }
        }
    }
}

@compute @workgroup_size(WORKGROUP)
fn weight_grad(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let m0 = wid.y * TILE;
    let n0 = wid.x * TILE;
    let taps = cv.k * cv.k;
    let pixels = cv.out_h * cv.out_w;
    let depth = cv.batch * pixels;
    let start = wid.z * cv.chunk;
    let end = min(depth, start + cv.chunk);
    // this thread gathers B's column n0 + lid % 64: tap (ci, ky, kx), or the bias's ones
    let col = n0 + lid % 64u;
    let is_bias = col == cv.cin * taps;
    let ci = col / taps;
    let ky = i32((col % taps) / cv.k);
    let kx = i32(col % cv.k);
    var acc: array<vec4<f32>, 4>;
    for (var k0 = start; k0 < end; k0 += DEPTH) {
        for (var r = 0u; r < 4u; r++) {
            let m = lid / 16u + 16u * r;
            let k = k0 + lid % 16u;
            var v = 0.0;
            if (m0 + m < cv.cout && k < end) {
                v = y[((k / pixels) * cv.cout + m0 + m) * pixels + k % pixels];
            }
            stage_a(m, lid % 16u, v);
        }
        for (var r = 0u; r < 4u; r++) {
            let kr = lid / 64u + 4u * r;
            let k = k0 + kr;
            var v = 0.0;
            if (col < cv.cols && k < end) {
                if (is_bias) {
                    v = 1.0;
                } else {
                    let b = k / pixels;
                    let p = k % pixels;
                    let iy = i32((p / cv.out_w) * cv.stride) - i32(cv.pad) + ky;
                    let ix = i32((p % cv.out_w) * cv.stride) - i32(cv.pad) + kx;
                    if (iy >= 0 && ix >= 0 && iy < i32(cv.height) && ix < i32(cv.width)) {
                        v = x[((b * cv.cin + ci) * cv.height + u32(iy)) * cv.width + u32(ix)];
                    }
                }
            }
            stage_b(kr, lid % 64u, v);
        }
        workgroupBarrier();
        multiply_slice(&acc, lid / 16u, lid % 16u);
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + (lid / 16u) * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let n = n0 + (lid % 16u) * 4u + j;
            if (m < cv.cout && n < cv.cols) {
                partials[(wid.z * cv.cout + m) * cv.cols + n] = acc[i][j];
            }
        }
    }
}

// Sums the split-K partial tiles (at most a few hundred each) into dw and db.
@compute @workgroup_size(WORKGROUP)
fn weight_reduce(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, groups, lid);
    if (i >= cv.cout * cv.cols) {
        return;
    }
    let m = i / cv.cols;
    let col = i % cv.cols;
    var sum = 0.0;
    for (var z = 0u; z < cv.splits; z++) {
        sum += partials[(z * cv.cout + m) * cv.cols + col];
    }
    let taps = cv.cin * cv.k * cv.k;
    if (col < taps) {
        dw[m * taps + col] = sum;
    } else {
        db[m] = sum;
    }
}
