// The parametrized ISP on the GPU: forward and hand-derived backward (adjoints) of
// crate/isp/param/forward.rs, which stays the reference. One arena per direction holds every
// tensor at a fixed slot (in units of N = B*H*W floats) so each kernel binds few buffers.
//
// Tensors are (B, C, H, W) row-major inside their slot.
//
// Filtering Y and converting back, RGB' = RGB_FROM_YUV (Y', U, V) with (U, V) unchanged, equals
// RGB + RGB_FROM_YUV[:, 0] (Y' - Y) exactly (the matrices are inverses). The kernels use that
// form: U and V never round-trip, which keeps dark pixels (where gamma's slope is steep and the
// gradients cancel through batch norm) within float32's bounds.

// Prepended where the program is built (gpu/isp/mod.rs, from the Rust definitions): the
// uniforms Dims and Reduce; the offsets in stats (S_*), the arena slots (F_*, B_*; B_STAGES the
// tracked stages' gradients), the reduction kinds (K_*); where each parameter group starts in prm
// and grads (BLACK_LEVEL, WHITE_BALANCE, COLOUR_CORRECTION, GAMMA_CORRECT, DEBAYER,
// SHARPENING_FILTER, GAUSSIAN_BLUR); CLIP_MIN, CLIP_MAX, BN_EPS, BN_MOMENTUM; Y_FROM_RGB and
// RGB_FROM_Y (the luma row of RGB_TO_YUV and the luma column of its inverse); the workgroup
// sizes WORKGROUP and NARROW_WORKGROUP.

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<uniform> red: Reduce;
@group(0) @binding(2) var<storage, read_write> fwd: array<f32>;
@group(0) @binding(3) var<storage, read_write> bwd: array<f32>;
@group(0) @binding(4) var<storage, read_write> prm: array<f32>;
@group(0) @binding(5) var<storage, read_write> grads: array<f32>;
@group(0) @binding(6) var<storage, read_write> partials: array<f32>;
// Batch norm's statistics (mean, var, mean g, mean g*y_hat; 3 each), then its running mean
// and variance.
@group(0) @binding(7) var<storage, read_write> stats: array<f32>;
// Per stage, |dL/d stage| averaged over the batch and channels: (5, H, W), for snapshots.
@group(0) @binding(8) var<storage, read_write> maps: array<f32>;

struct Pixel {
    b: u32,
    y: i32,
    x: i32,
    yx: u32,
}

fn n_px() -> u32 {
    return dims.batch * dims.height * dims.width;
}

fn hw() -> u32 {
    return dims.height * dims.width;
}

fn pixel(p: u32) -> Pixel {
    let b = p / hw();
    let yx = p % hw();
    return Pixel(b, i32(yx / dims.width), i32(yx % dims.width), yx);
}

// Index of (b, c, y*W + x) in a 3-channel tensor at `slot`.
fn at3(slot: u32, b: u32, c: u32, yx: u32) -> u32 {
    return slot * n_px() + (b * 3u + c) * hw() + yx;
}

// Index of (b, y*W + x) in a 1-channel plane at `slot`.
fn at1(slot: u32, b: u32, yx: u32) -> u32 {
    return slot * n_px() + b * hw() + yx;
}

fn yx_of(y: i32, x: i32) -> u32 {
    return u32(y) * dims.width + u32(x);
}

// PyTorch 'reflect' (d c b | a b c d), for pads shorter than the side.
fn reflect(i: i32, n: i32) -> i32 {
    var j = i;
    if (j < 0) {
        j = -j;
    }
    if (j >= n) {
        j = 2 * (n - 1) - j;
    }
    return j;
}

fn inside(y: i32, x: i32) -> bool {
    return y >= 0 && x >= 0 && y < i32(dims.height) && x < i32(dims.width);
}

// RGGB: site 0 R, 1 and 2 G, 3 B.
fn site(y: i32, x: i32) -> u32 {
    return u32(y % 2) * 2u + u32(x % 2);
}

fn channel_of(s: u32) -> u32 {
    return select(select(1u, 2u, s == 3u), 0u, s == 0u);
}

// The scattered mosaic minus black level, channel c at (y, x), from the raw input.
fn mosaic(b: u32, c: u32, y: i32, x: i32) -> f32 {
    let s = site(y, x);
    if (channel_of(s) != c) {
        return 0.0;
    }
    return fwd[at1(F_RAW, b, yx_of(y, x))] - prm[BLACK_LEVEL + s];
}

fn m3(base: u32, row: u32, col: u32) -> f32 {
    return prm[base + row * 3u + col];
}

// Row `row` of the 3x3 matrix at `base` times v, with fused multiply-adds.
fn dot_row(base: u32, row: u32, v: vec3<f32>) -> f32 {
    return fma(m3(base, row, 2u), v.z, fma(m3(base, row, 1u), v.y, m3(base, row, 0u) * v.x));
}

// The luma of an RGB value (the same fused order as dot_row).
fn luma(v: vec3<f32>) -> f32 {
    return fma(Y_FROM_RGB.z, v.z, fma(Y_FROM_RGB.y, v.y, Y_FROM_RGB.x * v.x));
}

// ---------------------------------------------------------------- forward

@compute @workgroup_size(WORKGROUP)
fn debayer(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= n_px()) {
        return;
    }
    let px = pixel(gid.x);
    let h = i32(dims.height);
    let w = i32(dims.width);
    for (var k = 0u; k < 3u; k++) {
        var acc = 0.0;
        for (var c = 0u; c < 3u; c++) {
            for (var ty = 0; ty < 3; ty++) {
                for (var tx = 0; tx < 3; tx++) {
                    let weight = prm[DEBAYER + ((k * 3u + c) * 3u + u32(ty)) * 3u + u32(tx)];
                    acc = fma(weight, mosaic(px.b, c, reflect(px.y + ty - 1, h), reflect(px.x + tx - 1, w)), acc);
                }
            }
        }
        fwd[at3(F_DEMOSAIC, px.b, k, px.yx)] = acc;
    }
}

@compute @workgroup_size(WORKGROUP)
fn colour(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= n_px()) {
        return;
    }
    let px = pixel(gid.x);
    var balanced: vec3<f32>;
    for (var c = 0u; c < 3u; c++) {
        balanced[c] = fwd[at3(F_DEMOSAIC, px.b, c, px.yx)] * prm[WHITE_BALANCE + c];
    }
    var corrected: vec3<f32>;
    for (var k = 0u; k < 3u; k++) {
        corrected[k] = dot_row(COLOUR_CORRECTION, k, balanced);
        fwd[at3(F_CORRECTED, px.b, k, px.yx)] = corrected[k];
    }
    fwd[at1(F_Y, px.b, px.yx)] = luma(corrected);
}

@compute @workgroup_size(WORKGROUP)
fn sharpen(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= n_px()) {
        return;
    }
    let px = pixel(gid.x);
    var ys = 0.0;
    for (var ty = 0; ty < 3; ty++) {
        for (var tx = 0; tx < 3; tx++) {
            let y = px.y + ty - 1;
            let x = px.x + tx - 1;
            if (inside(y, x)) {
                ys += prm[SHARPENING_FILTER + u32(ty * 3 + tx)] * fwd[at1(F_Y, px.b, yx_of(y, x))];
            }
        }
    }
    let dy = ys - fwd[at1(F_Y, px.b, px.yx)];
    var sharpened: vec3<f32>;
    for (var k = 0u; k < 3u; k++) {
        sharpened[k] = fma(RGB_FROM_Y[k], dy, fwd[at3(F_CORRECTED, px.b, k, px.yx)]);
        fwd[at3(F_SHARPENED, px.b, k, px.yx)] = sharpened[k];
    }
    fwd[at1(F_Y2, px.b, px.yx)] = luma(sharpened);
}

@compute @workgroup_size(WORKGROUP)
fn blur_gamma(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= n_px()) {
        return;
    }
    let px = pixel(gid.x);
    let h = i32(dims.height);
    let w = i32(dims.width);
    var yb = 0.0;
    for (var ty = 0; ty < 5; ty++) {
        for (var tx = 0; tx < 5; tx++) {
            let src = yx_of(reflect(px.y + ty - 2, h), reflect(px.x + tx - 2, w));
            yb += prm[GAUSSIAN_BLUR + u32(ty * 5 + tx)] * fwd[at1(F_Y2, px.b, src)];
        }
    }
    let dy = yb - fwd[at1(F_Y2, px.b, px.yx)];
    let inv_gamma = 1.0 / prm[GAMMA_CORRECT];
    for (var k = 0u; k < 3u; k++) {
        let denoised = fma(RGB_FROM_Y[k], dy, fwd[at3(F_SHARPENED, px.b, k, px.yx)]);
        fwd[at3(F_DENOISED, px.b, k, px.yx)] = denoised;
        let encoded = exp(log(clamp(denoised, CLIP_MIN, CLIP_MAX)) * inv_gamma);
        fwd[at3(F_GAMMA, px.b, k, px.yx)] = encoded;
        fwd[at3(F_OUTPUT, px.b, k, px.yx)] = encoded;
    }
}

// Batch norm with the statistics the reductions left in stats[S_MEAN..], stats[S_VAR..].
@compute @workgroup_size(WORKGROUP)
fn bn_apply(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= n_px()) {
        return;
    }
    let px = pixel(gid.x);
    for (var c = 0u; c < 3u; c++) {
        let i = at3(F_GAMMA, px.b, c, px.yx);
        fwd[at3(F_OUTPUT, px.b, c, px.yx)] = (fwd[i] - stats[S_MEAN + c]) / sqrt(stats[S_VAR + c] + BN_EPS);
    }
}

// A training batch's statistics folded into the running ones, as PyTorch's BatchNorm2d does
// (the running variance takes the unbiased batch variance).
@compute @workgroup_size(NARROW_WORKGROUP)
fn bn_track(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= 3u) {
        return;
    }
    let n = f32(n_px());
    let unbiased = stats[S_VAR + c] * n / max(n - 1.0, 1.0);
    stats[S_RUN_MEAN + c] = (1.0 - BN_MOMENTUM) * stats[S_RUN_MEAN + c] + BN_MOMENTUM * stats[S_MEAN + c];
    stats[S_RUN_VAR + c] = (1.0 - BN_MOMENTUM) * stats[S_RUN_VAR + c] + BN_MOMENTUM * unbiased;
}

// Evaluation: bn_apply normalises with the running statistics. The output is then an affine map
// of its input per channel, so the batch terms of bn_backward vanish.
@compute @workgroup_size(NARROW_WORKGROUP)
fn bn_recall(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= 3u) {
        return;
    }
    stats[S_MEAN + c] = stats[S_RUN_MEAN + c];
    stats[S_VAR + c] = stats[S_RUN_VAR + c];
    stats[S_G + c] = 0.0;
    stats[S_GY + c] = 0.0;
}

// ---------------------------------------------------------------- backward

@compute @workgroup_size(WORKGROUP)
fn bn_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= n_px()) {
        return;
    }
    let px = pixel(gid.x);
    let batch_norm = (dims.flags & 1u) != 0u;
    for (var c = 0u; c < 3u; c++) {
        let g = bwd[at3(B_OUTPUT, px.b, c, px.yx)];
        var g_in = g;
        if (batch_norm) {
            let y_hat = fwd[at3(F_OUTPUT, px.b, c, px.yx)];
            g_in = (g - stats[S_G + c] - y_hat * stats[S_GY + c]) / sqrt(stats[S_VAR + c] + BN_EPS);
        }
        bwd[at3(B_GAMMA, px.b, c, px.yx)] = g_in;
    }
}

@compute @workgroup_size(WORKGROUP)
fn gamma_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= n_px()) {
        return;
    }
    let px = pixel(gid.x);
    let gamma = prm[GAMMA_CORRECT];
    for (var c = 0u; c < 3u; c++) {
        let denoised = fwd[at3(F_DENOISED, px.b, c, px.yx)];
        let out = fwd[at3(F_GAMMA, px.b, c, px.yx)];
        let g = bwd[at3(B_GAMMA, px.b, c, px.yx)];
        var g_in = 0.0;
        // torch.clip passes the gradient on [min, max], bounds included
        if (denoised >= CLIP_MIN && denoised <= CLIP_MAX) {
            g_in = g * out / (gamma * denoised);
        }
        bwd[at3(B_DENOISED, px.b, c, px.yx)] = g_in;
    }
}

// g . RGB_FROM_YUV[:, 0] for a 3-channel gradient at `slot`: the gradient of a filtered Y.
fn to_y_gradient(slot: u32, px: Pixel) -> f32 {
    var g = 0.0;
    for (var k = 0u; k < 3u; k++) {
        g += RGB_FROM_Y[k] * bwd[at3(slot, px.b, k, px.yx)];
    }
    return g;
}

// denoised = sharpened + RGB[:, 0] (yb - y2): the gradient of yb.
@compute @workgroup_size(WORKGROUP)
fn denoise_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= n_px()) {
        return;
    }
    let px = pixel(gid.x);
    bwd[at1(B_YB, px.b, px.yx)] = to_y_gradient(B_DENOISED, px);
}

// The output positions q whose tap t reads input position p through reflect padding `pad`
// (-1 where none): straight, reflected at the start, reflected at the end.
fn reflect_sources(p: i32, t: i32, pad: i32, n: i32) -> vec3<i32> {
    var q = vec3<i32>(-1, -1, -1);
    let direct = p - t + pad;
    if (direct >= 0 && direct < n) {
        q.x = direct;
    }
    if (p > 0) {
        let start = -p - t + pad; // j = q + t - pad = -p < 0
        if (start >= 0 && start < n) {
            q.y = start;
        }
    }
    if (p < n - 1) {
        let end = 2 * (n - 1) - p - t + pad; // j = 2(n-1) - p > n - 1
        if (end >= 0 && end < n) {
            q.z = end;
        }
    }
    return q;
}

// y2 -> yb is the 5x5 blur with reflect padding 2: its adjoint gathers over reflected sources.
@compute @workgroup_size(WORKGROUP)
fn blur_adjoint(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= n_px()) {
        return;
    }
    let px = pixel(gid.x);
    let h = i32(dims.height);
    let w = i32(dims.width);
    var acc = 0.0;
    for (var ty = 0; ty < 5; ty++) {
        let qy = reflect_sources(px.y, ty, 2, h);
        for (var tx = 0; tx < 5; tx++) {
            let qx = reflect_sources(px.x, tx, 2, w);
            let weight = prm[GAUSSIAN_BLUR + u32(ty * 5 + tx)];
            for (var a = 0; a < 3; a++) {
                for (var b = 0; b < 3; b++) {
                    if (qy[a] >= 0 && qx[b] >= 0) {
                        acc += weight * bwd[at1(B_YB, px.b, yx_of(qy[a], qx[b]))];
                    }
                }
            }
        }
    }
    // y2 enters both the blur and, with a minus sign, the difference yb - y2
    bwd[at1(B_Y2, px.b, px.yx)] = acc - bwd[at1(B_YB, px.b, px.yx)];
}

// denoised passes sharpened through and y2 = YUV[0, :] sharpened: the sharpening stage's gradient.
@compute @workgroup_size(WORKGROUP)
fn yuv2_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= n_px()) {
        return;
    }
    let px = pixel(gid.x);
    let g_y2 = bwd[at1(B_Y2, px.b, px.yx)];
    for (var c = 0u; c < 3u; c++) {
        bwd[at3(B_SHARPENED, px.b, c, px.yx)] = bwd[at3(B_DENOISED, px.b, c, px.yx)] + Y_FROM_RGB[c] * g_y2;
    }
}

// sharpened = corrected + RGB[:, 0] (ys - y): the gradient of ys.
@compute @workgroup_size(WORKGROUP)
fn sharpen_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= n_px()) {
        return;
    }
    let px = pixel(gid.x);
    bwd[at1(B_YS, px.b, px.yx)] = to_y_gradient(B_SHARPENED, px);
}

// y -> ys is the 3x3 sharpening filter with zero padding: g_y[p] = sum_t w[t] g_ys[p - t + 1].
@compute @workgroup_size(WORKGROUP)
fn sharpen_adjoint(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= n_px()) {
        return;
    }
    let px = pixel(gid.x);
    var acc = 0.0;
    for (var ty = 0; ty < 3; ty++) {
        for (var tx = 0; tx < 3; tx++) {
            let y = px.y - ty + 1;
            let x = px.x - tx + 1;
            if (inside(y, x)) {
                acc += prm[SHARPENING_FILTER + u32(ty * 3 + tx)] * bwd[at1(B_YS, px.b, yx_of(y, x))];
            }
        }
    }
    // y enters both the filter and, with a minus sign, the difference ys - y
    bwd[at1(B_Y, px.b, px.yx)] = acc - bwd[at1(B_YS, px.b, px.yx)];
}

// sharpened passes corrected through and y = YUV[0, :] corrected: the colour-correction gradient.
@compute @workgroup_size(WORKGROUP)
fn yuv_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= n_px()) {
        return;
    }
    let px = pixel(gid.x);
    let g_y = bwd[at1(B_Y, px.b, px.yx)];
    for (var c = 0u; c < 3u; c++) {
        bwd[at3(B_CORRECTED, px.b, c, px.yx)] = bwd[at3(B_SHARPENED, px.b, c, px.yx)] + Y_FROM_RGB[c] * g_y;
    }
}

// corrected = CC * (wb . demosaic): the demosaic stage's gradient.
@compute @workgroup_size(WORKGROUP)
fn colour_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= n_px()) {
        return;
    }
    let px = pixel(gid.x);
    let g = vec3<f32>(
        bwd[at3(B_CORRECTED, px.b, 0u, px.yx)],
        bwd[at3(B_CORRECTED, px.b, 1u, px.yx)],
        bwd[at3(B_CORRECTED, px.b, 2u, px.yx)],
    );
    for (var c = 0u; c < 3u; c++) {
        let g_balanced = m3(COLOUR_CORRECTION, 0u, c) * g.x + m3(COLOUR_CORRECTION, 1u, c) * g.y + m3(COLOUR_CORRECTION, 2u, c) * g.z;
        bwd[at3(B_DEMOSAIC, px.b, c, px.yx)] = prm[WHITE_BALANCE + c] * g_balanced;
    }
}

// mosaic -> demosaic is the 3x3 debayer convolution with reflect padding 1.
@compute @workgroup_size(WORKGROUP)
fn debayer_adjoint(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= n_px()) {
        return;
    }
    let px = pixel(gid.x);
    let h = i32(dims.height);
    let w = i32(dims.width);
    for (var c = 0u; c < 3u; c++) {
        var acc = 0.0;
        for (var ty = 0; ty < 3; ty++) {
            let qy = reflect_sources(px.y, ty, 1, h);
            for (var tx = 0; tx < 3; tx++) {
                let qx = reflect_sources(px.x, tx, 1, w);
                for (var k = 0u; k < 3u; k++) {
                    let weight = prm[DEBAYER + ((k * 3u + c) * 3u + u32(ty)) * 3u + u32(tx)];
                    for (var a = 0; a < 3; a++) {
                        for (var b = 0; b < 3; b++) {
                            if (qy[a] >= 0 && qx[b] >= 0) {
                                acc += weight * bwd[at3(B_DEMOSAIC, px.b, k, yx_of(qy[a], qx[b]))];
                            }
                        }
                    }
                }
            }
        }
        bwd[at3(B_MOSAIC, px.b, c, px.yx)] = acc;
    }
    // raw feeds only its own site's channel
    bwd[at1(B_RAW, px.b, px.yx)] = bwd[at3(B_MOSAIC, px.b, channel_of(site(px.y, px.x)), px.yx)];
}

// ---------------------------------------------------------------- reductions

// What pixel p adds to output j of a reduction.
fn contribution(kind: u32, j: u32, p: u32) -> f32 {
    let px = pixel(p);
    let h = i32(dims.height);
    let w = i32(dims.width);
    switch kind {
        case K_BN_MEAN: {
            return fwd[at3(F_GAMMA, px.b, j, px.yx)];
        }
        case K_BN_VAR: {
            let d = fwd[at3(F_GAMMA, px.b, j, px.yx)] - stats[S_MEAN + j];
            return d * d;
        }
        case K_BN_G: {
            return bwd[at3(B_OUTPUT, px.b, j, px.yx)];
        }
        case K_BN_GY: {
            return bwd[at3(B_OUTPUT, px.b, j, px.yx)] * fwd[at3(F_OUTPUT, px.b, j, px.yx)];
        }
        case K_GAMMA: {
            // d/dgamma exp(log(c) / gamma) = -out * log(c) / gamma^2
            let gamma = prm[GAMMA_CORRECT];
            var acc = 0.0;
            for (var c = 0u; c < 3u; c++) {
                let clipped = clamp(fwd[at3(F_DENOISED, px.b, c, px.yx)], CLIP_MIN, CLIP_MAX);
                let out = fwd[at3(F_GAMMA, px.b, c, px.yx)];
                acc += bwd[at3(B_GAMMA, px.b, c, px.yx)] * out * log(clipped);
            }
            return -acc / (gamma * gamma);
        }
        case K_BLUR: {
            let ty = i32(j / 5u);
            let tx = i32(j % 5u);
            let src = yx_of(reflect(px.y + ty - 2, h), reflect(px.x + tx - 2, w));
            return bwd[at1(B_YB, px.b, px.yx)] * fwd[at1(F_Y2, px.b, src)];
        }
        case K_SHARP: {
            let y = px.y + i32(j / 3u) - 1;
            let x = px.x + i32(j % 3u) - 1;
            if (!inside(y, x)) {
                return 0.0;
            }
            return bwd[at1(B_YS, px.b, px.yx)] * fwd[at1(F_Y, px.b, yx_of(y, x))];
        }
        case K_CC: {
            let k = j / 3u;
            let c = j % 3u;
            let balanced = prm[WHITE_BALANCE + c] * fwd[at3(F_DEMOSAIC, px.b, c, px.yx)];
            return bwd[at3(B_CORRECTED, px.b, k, px.yx)] * balanced;
        }
        case K_WB: {
            var g_balanced = 0.0;
            for (var k = 0u; k < 3u; k++) {
                g_balanced += m3(COLOUR_CORRECTION, k, j) * bwd[at3(B_CORRECTED, px.b, k, px.yx)];
            }
            return g_balanced * fwd[at3(F_DEMOSAIC, px.b, j, px.yx)];
        }
        case K_DEBAYER: {
            let k = j / 27u;
            let c = (j / 9u) % 3u;
            let ty = i32((j / 3u) % 3u);
            let tx = i32(j % 3u);
            let m = mosaic(px.b, c, reflect(px.y + ty - 1, h), reflect(px.x + tx - 1, w));
            return bwd[at3(B_DEMOSAIC, px.b, k, px.yx)] * m;
        }
        case K_BLACK: {
            let s = site(px.y, px.x);
            if (s != j) {
                return 0.0;
            }
            return -bwd[at3(B_MOSAIC, px.b, channel_of(s), px.yx)];
        }
        default: {
            return 0.0;
        }
    }
}

var<workgroup> scratch: array<f32, WORKGROUP>;

// Workgroup (j, chunk) sums contribution j over a strided share of the pixels.
@compute @workgroup_size(WORKGROUP)
fn reduce(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let j = wid.x;
    let chunk = wid.y;
    var acc = 0.0;
    var p = chunk * WORKGROUP + lid.x;
    let stride = red.chunks * WORKGROUP;
    let total = n_px();
    loop {
        if (p >= total) {
            break;
        }
        acc += contribution(red.kind, j, p);
        p += stride;
    }
    scratch[lid.x] = acc;
    workgroupBarrier();
    for (var s = WORKGROUP / 2u; s > 0u; s = s >> 1u) {
        if (lid.x < s) {
            scratch[lid.x] += scratch[lid.x + s];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        partials[j * red.chunks + chunk] = scratch[0];
    }
}

@compute @workgroup_size(NARROW_WORKGROUP)
fn finalize(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if (j >= red.count) {
        return;
    }
    var sum = 0.0;
    for (var c = 0u; c < red.chunks; c++) {
        sum += partials[j * red.chunks + c];
    }
    // batch norm's statistics go to stats, parameter gradients to grads
    if (red.kind <= K_BN_GY) {
        stats[red.destination + j] = sum * red.scale;
    } else {
        grads[red.destination + j] = sum * red.scale;
    }
}

@compute @workgroup_size(WORKGROUP)
fn stage_maps(@builtin(global_invocation_id) gid: vec3<u32>) {
    let yx = gid.x;
    if (yx >= hw()) {
        return;
    }
    let scale = 1.0 / f32(dims.batch * 3u);
    for (var s = 0u; s < 5u; s++) {
        var sum = 0.0;
        for (var b = 0u; b < dims.batch; b++) {
            for (var c = 0u; c < 3u; c++) {
                sum += abs(bwd[at3(B_STAGES[s], b, c, yx)]);
            }
        }
        maps[s * hw() + yx] = sum * scale;
    }
}
