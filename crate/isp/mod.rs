//! Image signal processing: the paper's static pipeline (12 views), the parametrized and
//! differentiable pipeline, and the inverse pipeline that turns RGB scenes into raw mosaics.

pub mod param;
pub mod static_pipeline;
pub mod unprocess;
