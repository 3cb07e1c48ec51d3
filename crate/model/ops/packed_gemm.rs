//! A packed, register-blocked f32 matrix product on 4-lane vectors: WebAssembly SIMD128 in the
//! page, a portable 4-lane type natively (where it is tested against the `gemm` crate, whose
//! AVX/FMA kernels stay the native path).
//!
//! GotoBLAS's loop nest: the output is cut into MC x NC blocks, one task each (over the rayon pool
//! where the page has threads); a block walks the depth in KC slices, packing its rows of A into
//! MR-row panels and its columns of B into NR-column panels, and a 4x8 register tile (8
//! accumulators of 4 lanes, two B vectors, a broadcast) sums each panel pair. The tile is sized for
//! the engine's registers: in Chromium on x86-64, 6x8 and 3x12 tiles (13-15 live vectors, as the
//! `gemm` crate's 12x4 wasm kernel has 16) ran 6-16% slower than 4x8 (`node tests/bench/run.mjs
//! matrix_products`). Each output's sum runs in the same order whatever the thread count, so
//! results are identical at any thread count.

use std::cell::RefCell;

use rayon::prelude::*;

use super::gemm::View;
use lanes::F32x4;

/// Rows of a register tile.
const MR: usize = 4;
/// Columns of a register tile (NV vectors).
const NR: usize = 8;
/// Depth of a packed slice: a B panel (KC x NR, 8 KB) stays in L1 while the A panels stream.
const KC: usize = 256;
/// Rows of an output block (24 register tiles): its packed A slice is 96 KB, for L2.
const MC: usize = 24 * MR;
/// Columns of an output block: narrow enough that the convolutions' products make several
/// blocks for the threads to share.
const NC: usize = 16 * NR;

/// f32x4 as SIMD128 in WebAssembly.
#[cfg(target_arch = "wasm32")]
mod lanes {
    use core::arch::wasm32::*;

    #[derive(Clone, Copy)]
    pub struct F32x4(v128);

    impl F32x4 {
        #[inline(always)]
        pub fn splat(x: f32) -> Self {
            Self(f32x4_splat(x))
        }

        /// The first four values of `s` (which has at least four).
        #[inline(always)]
        pub fn load(s: &[f32]) -> Self {
            assert!(s.len() >= 4);
            // SAFETY: four f32 are in bounds; v128_load has no alignment requirement.
            Self(unsafe { v128_load(s.as_ptr().cast()) })
        }

        #[inline(always)]
        pub fn store(self, s: &mut [f32]) {
            assert!(s.len() >= 4);
            // SAFETY: as in `load`.
            unsafe { v128_store(s.as_mut_ptr().cast(), self.0) }
        }

        /// self + a * b, rounded twice (SIMD128 has no fused multiply-add).
        #[cfg(not(target_feature = "relaxed-simd"))]
        #[inline(always)]
        pub fn add_product(self, a: Self, b: Self) -> Self {
            Self(f32x4_add(self.0, f32x4_mul(a.0, b.0)))
        }

        /// self + a * b, fused where the engine's CPU has FMA (relaxed SIMD leaves it open), in
        /// a module built with `-C target-feature=+relaxed-simd`, for engines that have it.
        #[cfg(target_feature = "relaxed-simd")]
        #[inline(always)]
        pub fn add_product(self, a: Self, b: Self) -> Self {
            Self(f32x4_relaxed_madd(a.0, b.0, self.0))
        }

        #[inline(always)]
        pub fn add(self, other: Self) -> Self {
            Self(f32x4_add(self.0, other.0))
        }
    }
}

/// f32x4 as four floats, rounded as SIMD128 rounds: native results equal the page's bit for bit.
#[cfg(not(target_arch = "wasm32"))]
mod lanes {
    #[derive(Clone, Copy)]
    pub struct F32x4([f32; 4]);

    impl F32x4 {
        #[inline(always)]
        pub fn splat(x: f32) -> Self {
            Self([x; 4])
        }

        #[inline(always)]
        pub fn load(s: &[f32]) -> Self {
            Self([s[0], s[1], s[2], s[3]])
        }

        #[inline(always)]
        pub fn store(self, s: &mut [f32]) {
            s[..4].copy_from_slice(&self.0);
        }

        #[inline(always)]
        pub fn add_product(self, a: Self, b: Self) -> Self {
            Self(std::array::from_fn(|i| self.0[i] + a.0[i] * b.0[i]))
        }

        #[inline(always)]
        pub fn add(self, other: Self) -> Self {
            Self(std::array::from_fn(|i| self.0[i] + other.0[i]))
        }
    }
}

/// Vectors in a row of a register tile.
const NV: usize = NR / 4;

type Tile = [[F32x4; NV]; MR];

/// The register tile: sum over k of a's MR values times b's NR values (both packed k-major).
#[inline(never)]
fn tile_product(a: &[f32], b: &[f32]) -> Tile {
    let mut c = [[F32x4::splat(0.0); NV]; MR];
    for (ak, bk) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        let bv: [F32x4; NV] = std::array::from_fn(|v| F32x4::load(&bk[4 * v..]));
        for (ci, &x) in c.iter_mut().zip(ak) {
            let x = F32x4::splat(x);
            for (acc, &b) in ci.iter_mut().zip(&bv) {
                *acc = acc.add_product(x, b);
            }
        }
    }
    c
}

/// One operand's slice as W-wide panels, k-major: panel element [kk][j] is line `first + j` at
/// depth `p0 + kk`, where a line is a row of A (W = MR) or a column of B (W = NR), zero past the
/// last line. Reads run along whichever axis is contiguous.
fn pack<const W: usize>(
    src: &[f32],
    (offset, line_stride, depth_stride): (usize, usize, usize),
    (l0, lines): (usize, usize),
    (p0, kc): (usize, usize),
    out: &mut [f32],
) {
    for (p, panel) in out.chunks_exact_mut(kc * W).enumerate() {
        let first = l0 + p * W;
        let live = W.min(l0 + lines - first);
        let base = offset + first * line_stride + p0 * depth_stride;
        if live == W && line_stride == 1 {
            for (kk, at_k) in panel.chunks_exact_mut(W).enumerate() {
                let at = base + kk * depth_stride;
                at_k.copy_from_slice(&src[at..at + W]);
            }
            continue;
        }
        for j in 0..W {
            let at = base + j * line_stride;
            let lanes = panel.chunks_exact_mut(W).map(|at_k| &mut at_k[j]);
            if j >= live {
                lanes.for_each(|v| *v = 0.0);
            } else if depth_stride == 0 {
                lanes.for_each(|v| *v = src[at]);
            } else if depth_stride == 1 {
                lanes.zip(&src[at..at + kc]).for_each(|(v, &x)| *v = x);
            } else {
                let line = src[at..].iter().step_by(depth_stride);
                lanes.zip(line).for_each(|(v, &x)| *v = x);
            }
        }
    }
}

/// The destination, shared by the blocks' tasks: each writes only its own block.
#[derive(Clone, Copy)]
struct Destination {
    ptr: *mut f32,
    view: View,
}

// SAFETY: tasks write disjoint elements (blocks partition the output and the view was checked to
// map distinct (row, column) pairs to distinct elements), and the caller's &mut borrow outlives
// every task.
unsafe impl Send for Destination {}
unsafe impl Sync for Destination {}

impl Destination {
    /// Writes (or adds) the live `rows x cols` corner of a register tile at (r0, c0).
    fn put(&self, tile: &Tile, (r0, rows): (usize, usize), (c0, cols): (usize, usize), add: bool) {
        let d = self.view;
        if rows == MR && cols == NR && d.col_stride == 1 {
            for (r, lanes) in tile.iter().enumerate() {
                let at = d.offset + (r0 + r) * d.row_stride + c0;
                // SAFETY: the view was checked to lie inside the buffer, and this task owns the
                // block these NR elements belong to.
                let row = unsafe { std::slice::from_raw_parts_mut(self.ptr.add(at), NR) };
                for (half, &v) in row.chunks_exact_mut(4).zip(lanes) {
                    let v = if add { v.add(F32x4::load(half)) } else { v };
                    v.store(half);
                }
            }
            return;
        }
        let mut flat = [0f32; MR * NR];
        for (lanes, out) in tile.iter().zip(flat.chunks_exact_mut(NR)) {
            for (v, quad) in lanes.iter().zip(out.chunks_exact_mut(4)) {
                v.store(quad);
            }
        }
        for r in 0..rows {
            for c in 0..cols {
                let at = d.offset + (r0 + r) * d.row_stride + (c0 + c) * d.col_stride;
                // SAFETY: as above, element by element.
                unsafe {
                    let e = self.ptr.add(at);
                    *e = if add {
                        *e + flat[r * NR + c]
                    } else {
                        flat[r * NR + c]
                    };
                }
            }
        }
    }
}

thread_local! {
    /// Each thread's packed A and B slices, grown once and reused by every product.
    static PACKED: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// dst = [dst +] a * b for views the caller has checked (inside their buffers, shapes agreeing,
/// the destination's elements distinct, at least one row and column).
pub(super) fn gemm(
    (dst, d): (&mut [f32], View),
    accumulate: bool,
    (a, av): (&[f32], View),
    (b, bv): (&[f32], View),
    threads: usize,
) {
    let (m, n, k) = (d.rows, d.cols, av.cols);
    let out = Destination {
        ptr: dst.as_mut_ptr(),
        view: d,
    };
    let zero = [[F32x4::splat(0.0); NV]; MR];
    let col_blocks = n.div_ceil(NC);
    let block = |index: usize| {
        let (r0, c0) = ((index / col_blocks) * MC, (index % col_blocks) * NC);
        let (rows, cols) = (MC.min(m - r0), NC.min(n - c0));
        if k == 0 {
            if !accumulate {
                for r in (0..rows).step_by(MR) {
                    for c in (0..cols).step_by(NR) {
                        let live = (MR.min(rows - r), NR.min(cols - c));
                        out.put(&zero, (r0 + r, live.0), (c0 + c, live.1), false);
                    }
                }
            }
            return;
        }
        PACKED.with_borrow_mut(|(packed_a, packed_b)| {
            let (a_len, b_len) = (rows.div_ceil(MR) * MR * KC, cols.div_ceil(NR) * NR * KC);
            if packed_a.len() < a_len {
                packed_a.resize(a_len, 0.0);
            }
            if packed_b.len() < b_len {
                packed_b.resize(b_len, 0.0);
            }
            for p0 in (0..k).step_by(KC) {
                let kc = KC.min(k - p0);
                let pa = &mut packed_a[..rows.div_ceil(MR) * MR * kc];
                let pb = &mut packed_b[..cols.div_ceil(NR) * NR * kc];
                let a_lines = (av.offset, av.row_stride, av.col_stride);
                pack::<MR>(a, a_lines, (r0, rows), (p0, kc), pa);
                let b_lines = (bv.offset, bv.col_stride, bv.row_stride);
                pack::<NR>(b, b_lines, (c0, cols), (p0, kc), pb);
                let add = accumulate || p0 > 0;
                for (q, b_panel) in pb.chunks_exact(kc * NR).enumerate() {
                    let c = q * NR;
                    for (p, a_panel) in pa.chunks_exact(kc * MR).enumerate() {
                        let r = p * MR;
                        let tile = tile_product(a_panel, b_panel);
                        let live = (MR.min(rows - r), NR.min(cols - c));
                        out.put(&tile, (r0 + r, live.0), (c0 + c, live.1), add);
                    }
                }
            }
        });
    };
    let blocks = m.div_ceil(MC) * col_blocks;
    if threads > 1 && blocks > 1 {
        (0..blocks).into_par_iter().for_each(block);
    } else {
        (0..blocks).for_each(block);
    }
}
