//! A camera's own processing as a digital twin: the parametrized ISP, plus a tone curve and a
//! chroma gain, fitted to the camera's JPEG of a shot from its raw (DNG). Natively
//! (`lens2logit fit-camera`) and in the page on the same core.
//!
//! The fit runs in the sensor's frame at the JPEG's resolution ([`align`]): random crops of the
//! fitted area's left three quarters train it, the right quarter is held out and scores it. The
//! loss is L2 in display space (the rendering's 8-bit-range values against the JPEG's, both in
//! [0, 1]), away from each crop's edge, where the filters see padding.

mod align;
mod fit;

pub use align::{align, dng_and_jpeg, AlignedPair, Alignment, CropChoice};
pub use fit::{fit_camera, CameraFit, CameraTwin, FitOptions, FitProgress, TwinSummary};
