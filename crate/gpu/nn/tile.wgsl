// Prepended to the matrix-product kernels (gemm.wgsl, conv.wgsl): the shared micro-kernel. A
// workgroup of 256 threads computes a 64x64 tile of C = A B; thread (tm, tn) = (lid / 16,
// lid % 16) owns rows 4 tm .. 4 tm + 3 and columns 4 tn .. 4 tn + 3. K is consumed in slices of
// 16 staged in workgroup memory (2 x 4 KB), which the caller fills by gathering A and B however
// its operands are laid out (for a convolution: im2col on the fly, no column buffer).

// TILE and DEPTH are prepended from gpu/nn/mod.rs; the thread layout here is written for their
// values and WORKGROUP's (checked there).

// tile_a[k * 16 + m / 4][m % 4] = A[m0 + m, k0 + k]; tile_b[k * 16 + n / 4][n % 4] = B[k0 + k, n0 + n]
var<workgroup> tile_a: array<vec4<f32>, 256>;
var<workgroup> tile_b: array<vec4<f32>, 256>;

fn stage_a(m: u32, k: u32, value: f32) {
    tile_a[k * 16u + m / 4u][m % 4u] = value;
}

fn stage_b(k: u32, n: u32, value: f32) {
    tile_b[k * 16u + n / 4u][n % 4u] = value;
}

// acc[i][j] += sum over the staged slice of A[4 tm + i, k] B[k, 4 tn + j].
fn multiply_slice(acc: ptr<function, array<vec4<f32>, 4>>, tm: u32, tn: u32) {
    for (var k = 0u; k < DEPTH; k++) {
        let a = tile_a[k * 16u + tm];
        let b = tile_b[k * 16u + tn];
        (*acc)[0] = fma(vec4<f32>(a.x), b, (*acc)[0]);
        (*acc)[1] = fma(vec4<f32>(a.y), b, (*acc)[1]);
        (*acc)[2] = fma(vec4<f32>(a.z), b, (*acc)[2]);
        (*acc)[3] = fma(vec4<f32>(a.w), b, (*acc)[3]);
    }
}
