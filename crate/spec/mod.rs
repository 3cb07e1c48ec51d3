//! The contracts every other module shares, defined once: the ISP's parameter layout, groups and
//! constants; colour-space matrices; forensics' SSIM constants; the task models' kinds and their
//! layer graphs (written once against [`models::Net`], which the CPU and the GPU each execute);
//! the bounds and defaults of every setting. Nothing here computes on data: `isp`, `model`, `gpu` and `train` import it, it
//! imports none of them.

pub mod colour;
pub mod forensics;
pub mod isp;
pub mod limits;
pub mod models;
pub mod settings;
