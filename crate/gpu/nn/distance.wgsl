// The gradient of forensics' objective lambda * D(out, reference) - task loss with respect to out
// (the reference is constant), with D as crate/train/session.rs:
//   l2:   D = mean (out - ref)^2, so dD/dout = 2 (out - ref) / count.
//   ssim: D = 1 - mean over every 7x7 window p (stride 1, no padding) of S_p, the SSIM of x = out
//         and y = ref over p. With m = E[.] over the 49 pixels, N1 = 2 mx my + c1,
//         N2 = 2 sxy + c2, D1 = mx^2 + my^2 + c1, D2 = sxx + syy + c2 and S = N1 N2 / (D1 D2),
//         dS_p/dx_q = (A_p + B_p x_q + C_p y_q) / 49 for each pixel q of p, where
//           A = 2 (my (N2 - N1) + S mx (D1 - D2)) / (D1 D2),  B = -2 S / D2,  C = 2 N1 / (D1 D2).
//         ssim_windows stores (A, B, C) per window; ssim_grad sums them over the (at most 49)
//         windows covering each pixel: dD/dx_q = -sum_p dS_p/dx_q / windows.
// Both write upstream = lambda * dD/dout - task_grad.

// The uniform Objective, SSIM_WINDOW, SSIM_C1, SSIM_C2 and WORKGROUP are prepended from
// distance.rs.

@group(0) @binding(0) var<uniform> ds: Objective;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> reference: array<f32>;
@group(0) @binding(3) var<storage, read_write> task_grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> upstream: array<f32>;
// ssim: A of every window, then every B, then every C (3 * windows)
@group(0) @binding(5) var<storage, read_write> coefficients: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn l2_grad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, groups, lid);
    if (i >= ds.count) {
        return;
    }
    let d_distance = 2.0 * (out[i] - reference[i]) / f32(ds.count);
    upstream[i] = ds.lambda * d_distance - task_grad[i];
}

@compute @workgroup_size(WORKGROUP)
fn ssim_windows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = flat_index(wid, groups, lid);
    if (p >= ds.windows) {
        return;
    }
    let per_plane = ds.out_h * ds.out_w;
    let plane = p / per_plane;
    let row = (p % per_plane) / ds.out_w;
    let col = p % ds.out_w;
    var sx = 0.0;
    var sy = 0.0;
    var sxx = 0.0;
    var syy = 0.0;
    var sxy = 0.0;
    for (var r = 0u; r < SSIM_WINDOW; r++) {
        let at = (plane * ds.height + row + r) * ds.width + col;
        for (var c = 0u; c < SSIM_WINDOW; c++) {
            let x = out[at + c];
            let y = reference[at + c];
            sx += x;
            sy += y;
            sxx += x * x;
            syy += y * y;
            sxy += x * y;
        }
    }
    let n = f32(SSIM_WINDOW * SSIM_WINDOW);
    let mx = sx / n;
    let my = sy / n;
    let n1 = 2.0 * mx * my + SSIM_C1;
    let n2 = 2.0 * (sxy / n - mx * my) + SSIM_C2;
    let d1 = mx * mx + my * my + SSIM_C1;
    let d2 = (sxx / n - mx * mx) + (syy / n - my * my) + SSIM_C2;
    let d = d1 * d2;
    let s = n1 * n2 / d;
    coefficients[p] = 2.0 * (my * (n2 - n1) + s * mx * (d1 - d2)) / d;
    coefficients[ds.windows + p] = -2.0 * s / d2;
    coefficients[2u * ds.windows + p] = 2.0 * n1 / d;
}

@compute @workgroup_size(WORKGROUP)
fn ssim_grad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, groups, lid);
    if (i >= ds.count) {
        return;
    }
    let plane_size = ds.height * ds.width;
    let plane = i / plane_size;
    let py = (i % plane_size) / ds.width;
    let px = i % ds.width;
    // windows whose top-left corner (r, c) has r <= py < r + 7, likewise for c
    let first_row = max(py, SSIM_WINDOW - 1u) - (SSIM_WINDOW - 1u);
    let first_col = max(px, SSIM_WINDOW - 1u) - (SSIM_WINDOW - 1u);
    let last_row = min(py, ds.out_h - 1u);
    let last_col = min(px, ds.out_w - 1u);
    var sum = vec3<f32>(0.0);
    for (var r = first_row; r <= last_row; r++) {
        let at = (plane * ds.out_h + r) * ds.out_w;
        for (var c = first_col; c <= last_col; c++) {
            let p = at + c;
            sum += vec3<f32>(
                coefficients[p],
                coefficients[ds.windows + p],
                coefficients[2u * ds.windows + p],
            );
        }
    }
    let d_ssim = (sum.x + sum.y * out[i] + sum.z * reference[i]) / f32(SSIM_WINDOW * SSIM_WINDOW);
    upstream[i] = -ds.lambda * d_ssim / f32(ds.windows) - task_grad[i];
}
