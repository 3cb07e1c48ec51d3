//! Demosaicing as colour-demosaicing implements it (RGGB): each method fills in the two colours a
//! Bayer site did not sample. Outputs are unclipped, as in the library.

mod bilinear;
mod malvar2004;
mod menon2007;

pub use bilinear::bilinear;
pub use malvar2004::malvar2004;
pub use menon2007::menon2007;

use super::plane::Plane;
use crate::raw::BayerSite;

/// The mosaic restricted to the sites of one colour channel (zeros elsewhere): CFA * mask.
fn channel(cfa: &Plane, c: usize) -> Plane {
    let mut out = Plane::zeros(cfa.width, cfa.height);
    set_where(&mut out, |site| site.channel() == c, |i| cfa.data[i]);
    out
}

/// `dst = where(pred(site), value, dst)` pixel by pixel, like numpy's `np.where` on masks. The
/// predicate is asked once per site of the 2x2 pattern, and only matching pixels are visited.
fn set_where(dst: &mut Plane, pred: impl Fn(BayerSite) -> bool, value: impl Fn(usize) -> f64) {
    let w = dst.width;
    for site in BayerSite::ALL.into_iter().filter(|&s| pred(s)) {
        let (y0, x0) = (site.index() / 2, site.index() % 2);
        for y in (y0..dst.height).step_by(2) {
            for i in (y * w + x0..(y + 1) * w).step_by(2) {
                dst.data[i] = value(i);
            }
        }
    }
}

/// Rows holding red samples (even rows in RGGB); the other rows hold blue.
fn red_row(site: BayerSite) -> bool {
    matches!(site, BayerSite::Red | BayerSite::GreenRed)
}

/// Columns holding red samples (even columns in RGGB); the other columns hold blue.
fn red_column(site: BayerSite) -> bool {
    matches!(site, BayerSite::Red | BayerSite::GreenBlue)
}

fn is_green(site: BayerSite) -> bool {
    site.channel() == 1
}
