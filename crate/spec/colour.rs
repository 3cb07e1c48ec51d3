//! Colour-space constants and small 3x3 linear algebra shared by every ISP.

/// scikit-image's RGB -> YUV matrix (rows Y, U, V), the one the paper's pipelines use.
pub const RGB_TO_YUV: [[f64; 3]; 3] = [
    [0.299, 0.587, 0.114],
    [-0.14714119, -0.28886916, 0.43601035],
    [0.61497538, -0.51496512, -0.10001026],
];

/// The exact inverse of [`RGB_TO_YUV`], computed in f64 (scikit-image's `yuv2rgb` uses
/// `linalg.inv` of the same matrix).
pub fn yuv_to_rgb() -> [[f64; 3]; 3] {
    invert3(&RGB_TO_YUV).expect("the YUV matrix is invertible")
}

/// Row-major 9 values as a 3x3 matrix.
pub fn mat3(m: &[f64; 9]) -> [[f64; 3]; 3] {
    [[m[0], m[1], m[2]], [m[3], m[4], m[5]], [m[6], m[7], m[8]]]
}

/// The inverse of a 3x3 matrix by cofactors, or None when it is (numerically) singular.
pub fn invert3(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let c =
        |r0: usize, r1: usize, c0: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    let cof = [
        [c(1, 2, 1, 2), -c(1, 2, 0, 2), c(1, 2, 0, 1)],
        [-c(0, 2, 1, 2), c(0, 2, 0, 2), -c(0, 2, 0, 1)],
        [c(0, 1, 1, 2), -c(0, 1, 0, 2), c(0, 1, 0, 1)],
    ];
    let det = m[0][0] * cof[0][0] + m[0][1] * cof[0][1] + m[0][2] * cof[0][2];
    let scale = m.iter().flatten().fold(0.0f64, |a, v| a.max(v.abs()));
    if !det.is_finite() || det.abs() <= 1e-12 * scale.powi(3) {
        return None;
    }
    // inverse = adjugate / det, adjugate = cofactor matrix transposed
    let mut inv = [[0.0; 3]; 3];
    for (r, row) in inv.iter_mut().enumerate() {
        for (col, v) in row.iter_mut().enumerate() {
            *v = cof[col][r] / det;
        }
    }
    Some(inv)
}

/// `a * b`.
pub fn matmul3(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    std::array::from_fn(|r| std::array::from_fn(|c| (0..3).map(|k| a[r][k] * b[k][c]).sum()))
}

/// `m * v`.
#[inline]
pub fn apply3(m: &[[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    [
        m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2],
        m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
        m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuv_inverse_matches_scikit_image() {
        // scikit-image: rgb_from_yuv = linalg.inv(yuv_from_rgb), as numpy prints it in f64
        let inv = yuv_to_rgb();
        let expected = [
            [
                1.0000000000000002,
                -4.182_779_653_207_228e-9,
                1.1398830297637947,
            ],
            [1.0, -0.394_642_333_944_128_8, -0.580_621_849_676_187_9],
            [
                1.0000000000000002,
                2.0320618532969705,
                -1.2232657771803205e-09,
            ],
        ];
        for r in 0..3 {
            for c in 0..3 {
                assert!((inv[r][c] - expected[r][c]).abs() < 1e-14, "{r},{c}");
            }
        }
        let round = apply3(&inv, apply3(&RGB_TO_YUV, [0.2, 0.5, 0.9]));
        assert!((round[2] - 0.9).abs() < 1e-12);
    }

    #[test]
    fn singular_matrix_has_no_inverse() {
        assert!(invert3(&[[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 0.0, 1.0]]).is_none());
    }
}
