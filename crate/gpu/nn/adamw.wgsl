// One AdamW step per parameter element, in candle_nn::AdamW's order of f32 operations:
//   m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2,
//   theta = theta (1 - lr wd) - lr (m scale_m) / (sqrt(v scale_v) + eps),
// with the bias corrections scale_m = 1 / (1 - beta1^t), scale_v = 1 / (1 - beta2^t) computed on
// the CPU in f64 each step (as candle does) and passed as f32.
// The uniform AdamWStep and WORKGROUP are prepended from adamw.rs.

@group(0) @binding(0) var<uniform> opt: AdamWStep;
@group(0) @binding(1) var<storage, read_write> theta: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn step(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, groups, lid);
    if (i >= opt.count) {
        return;
    }
    let g = grad[i];
    let next_m = m[i] * opt.beta1 + g * opt.one_minus_beta1;
    let next_v = v[i] * opt.beta2 + (g * g) * opt.one_minus_beta2;
    let m_hat = next_m * opt.scale_m;
    let v_hat = next_v * opt.scale_v;
    let adjusted = m_hat / (sqrt(v_hat) + opt.eps);
    m[i] = next_m;
    v[i] = next_v;
    theta[i] = theta[i] * opt.decay - adjusted * opt.lr;
}
