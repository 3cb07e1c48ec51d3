//! A single image plane in f64 (row-major), and the border modes of scipy.ndimage.
//!
//! The static pipeline computes in f64 as numpy does: the paper's views end in x^(1/2.2), whose
//! slope near black amplifies any rounding, and f64 keeps us within 1e-5 of the reference there.

/// One channel of an image, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f64>,
}

/// How values beyond the edge are made up, in scipy.ndimage's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Border {
    /// 'reflect' (half-sample symmetric): d c b a | a b c d | d c b a.
    Reflect,
    /// 'mirror' (whole-sample symmetric): d c b | a b c d | c b a.
    Mirror,
    /// 'constant' with cval 0 (also scipy.signal's 'fill' with fillvalue 0).
    Zero,
}

impl Border {
    /// The source index for position `i` (may be out of range) on an axis of length `n`, or None
    /// for a zero sample. Periodic extension handles offsets larger than the axis.
    pub fn source(self, i: isize, n: usize) -> Option<usize> {
        let n = n as isize;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        match self {
            Border::Zero => None,
            Border::Reflect => {
                let period = 2 * n;
                let k = i.rem_euclid(period);
                Some(if k < n { k } else { period - 1 - k } as usize)
            }
            Border::Mirror => {
                if n == 1 {
                    return Some(0);
                }
                let period = 2 * n - 2;
                let k = i.rem_euclid(period);
                Some(if k < n { k } else { period - k } as usize)
            }
        }
    }
}

impl Plane {
    pub fn zeros(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            data: vec![0.0; width * height],
        }
    }

    pub fn from_fn(width: usize, height: usize, f: impl Fn(usize, usize) -> f64) -> Self {
        let mut data = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                data.push(f(y, x));
            }
        }
        Self {
            width,
            height,
            data,
        }
    }

    #[inline]
    pub fn at(&self, y: usize, x: usize) -> f64 {
        self.data[y * self.width + x]
    }

    /// A plane of the same size holding `data`.
    pub fn like(&self, data: Vec<f64>) -> Plane {
        debug_assert_eq!(data.len(), self.data.len());
        Plane {
            width: self.width,
            height: self.height,
            data,
        }
    }

    /// Element-wise map into a new plane.
    pub fn map(&self, f: impl Fn(f64) -> f64) -> Plane {
        Plane {
            width: self.width,
            height: self.height,
            data: self.data.iter().map(|&v| f(v)).collect(),
        }
    }

    /// Element-wise combination of two planes of the same size.
    pub fn zip_map(&self, other: &Plane, f: impl Fn(f64, f64) -> f64) -> Plane {
        debug_assert_eq!((self.width, self.height), (other.width, other.height));
        Plane {
            width: self.width,
            height: self.height,
            data: self
                .data
                .iter()
                .zip(&other.data)
                .map(|(&a, &b)| f(a, b))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn border_modes_follow_scipy() {
        // axis [a b c d] = indices 0..4
        let idx = |b: Border, range: std::ops::Range<isize>| -> Vec<Option<usize>> {
            range.map(|i| b.source(i, 4)).collect()
        };
        let s = Some;
        assert_eq!(idx(Border::Reflect, -4..0), vec![s(3), s(2), s(1), s(0)]);
        assert_eq!(idx(Border::Reflect, 4..8), vec![s(3), s(2), s(1), s(0)]);
        assert_eq!(idx(Border::Mirror, -3..0), vec![s(3), s(2), s(1)]);
        assert_eq!(idx(Border::Mirror, 4..7), vec![s(2), s(1), s(0)]);
        assert_eq!(idx(Border::Zero, -1..0), vec![None]);
    }
}
