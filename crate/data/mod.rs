//! Where raw tiles come from: the synthetic generator (the offline default) and, later, Zenodo
//! streaming and local files.

pub mod synthetic;
