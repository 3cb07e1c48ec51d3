// C = A B (+ bias per column) for small dense operands given by strides, so a transposed operand
// is just other strides: C[i, j] = sum_k a[i a_row + k a_col] b[k b_row + j b_col] + bias[j].
// A stride pair (0, 0) reads one value for the whole operand (a vector of ones: column sums).

// The uniform Gemm, the tile sizes TILE and DEPTH and WORKGROUP are prepended from gemm.rs.

@group(0) @binding(0) var<uniform> gm: Gemm;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> bias: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn gemm(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let m0 = wid.y * TILE;
    let n0 = wid.x * TILE;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < gm.k; k0 += DEPTH) {
        for (var r = 0u; r < 4u; r++) {
            let m = lid / 16u + 16u * r;
            let k = lid % 16u;
            var v = 0.0;
            if (m0 + m < gm.m && k0 + k < gm.k) {
                v = a[(m0 + m) * gm.a_row + (k0 + k) * gm.a_col];
            }
            stage_a(m, k, v);
        }
        for (var r = 0u; r < 4u; r++) {
            let n = lid % 64u;
            let k = lid / 64u + 4u * r;
            var v = 0.0;
            if (n0 + n < gm.n && k0 + k < gm.k) {
                v = b[(k0 + k) * gm.b_row + (n0 + n) * gm.b_col];
            }
            stage_b(k, n, v);
        }
        workgroupBarrier();
        multiply_slice(&acc, lid / 16u, lid % 16u);
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + (lid / 16u) * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let n = n0 + (lid % 16u) * 4u + j;
            if (m < gm.m && n < gm.n) {
                var v = acc[i][j];
                if (gm.bias == 1u) {
                    v += bias[n];
                }
                c[m * gm.c_row + n] = v;
            }
        }
    }
}
