//! The choices of the static pipeline and their names, exactly as the paper's code spells them.

use std::fmt;
use std::str::FromStr;

use crate::Error;

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                $name::ALL.iter().copied().find(|v| v.name() == s).ok_or_else(|| {
                    let names: Vec<&str> = $name::ALL.iter().map(|v| v.name()).collect();
                    Error::invalid(format!("unknown {} '{s}': use one of {}", $what, names.join(", ")))
                })
            }
        }
    };
}

named_enum!(
    /// Demosaicing method (colour-demosaicing).
    Debayer, "demosaicing method" {
        Bilinear = "bilinear",
        Malvar2004 = "malvar2004",
        Menon2007 = "menon2007",
    }
);

named_enum!(
    /// Sharpening of the Y plane.
    Sharpening, "sharpening" {
        /// 3x3 [[0,-1,0],[-1,5,-1],[0,-1,0]], scipy.signal.convolve2d 'same', zero fill.
        SharpeningFilter = "sharpening_filter",
        /// What the paper's views contain (scikit-image 0.18 with multichannel=True on the 2-D Y
        /// plane): Y + (Y - blur), the blur a vertical-only 1-D gaussian (sigma 1, 'reflect').
        UnsharpMasking = "unsharp_masking",
        /// The textbook isotropic 2-D unsharp mask (sigma 1, 'reflect'), Y + (Y - blur).
        UnsharpMaskingIsotropic = "unsharp_masking_isotropic",
    }
);

named_enum!(
    /// Denoising of the Y plane.
    Denoising, "denoising" {
        /// scipy.ndimage.gaussian_filter, sigma 0.5.
        GaussianDenoising = "gaussian_denoising",
        /// scipy.ndimage.median_filter, 3x3.
        MedianDenoising = "median_denoising",
    }
);

/// One processing of a raw tile: a demosaicing, a sharpening and a denoising.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct View {
    pub debayer: Debayer,
    pub sharpening: Sharpening,
    pub denoising: Denoising,
}

impl View {
    /// The paper's 12 views: 3 demosaicings x 2 sharpenings x 2 denoisings.
    pub fn paper_views() -> Vec<View> {
        let mut views = Vec::with_capacity(12);
        for &debayer in Debayer::ALL {
            for sharpening in [Sharpening::SharpeningFilter, Sharpening::UnsharpMasking] {
                for &denoising in Denoising::ALL {
                    views.push(View {
                        debayer,
                        sharpening,
                        denoising,
                    });
                }
            }
        }
        views
    }
}

impl fmt::Display for View {
    /// `<debayer>-<sharpening>-<denoising>`, the file stem the CLI writes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.debayer, self.sharpening, self.denoising)
    }
}

impl FromStr for View {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let parts: Vec<&str> = s.split('-').collect();
        let [d, sh, dn] = parts[..] else {
            return Err(Error::invalid(format!(
                "a view is DEBAYER-SHARPENING-DENOISING (e.g. bilinear-unsharp_masking-gaussian_denoising), got '{s}'"
            )));
        };
        Ok(View {
            debayer: d.parse()?,
            sharpening: sh.parse()?,
            denoising: dn.parse()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twelve_distinct_views_round_trip_their_names() {
        let views = View::paper_views();
        assert_eq!(views.len(), 12);
        for v in &views {
            assert_eq!(v.to_string().parse::<View>().unwrap(), *v);
        }
        let set: std::collections::HashSet<_> = views.iter().collect();
        assert_eq!(set.len(), 12);
    }

    #[test]
    fn unknown_names_list_the_choices() {
        let err = "bicubic".parse::<Debayer>().unwrap_err().to_string();
        assert!(err.contains("bilinear, malvar2004, menon2007"), "{err}");
        assert!("a-b".parse::<View>().is_err());
    }
}
