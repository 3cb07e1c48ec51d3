//! What a dataset's tiles are for: the paper's two tasks, Raw-Microscopy's leukocyte
//! classification and Raw-Drone's car segmentation.

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Classification,
    Segmentation,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Classification => "classification",
            Task::Segmentation => "segmentation",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "classification" => Ok(Task::Classification),
            "segmentation" => Ok(Task::Segmentation),
            _ => Err(Error::invalid(format!(
                "unknown task '{s}': use classification or segmentation"
            ))),
        }
    }
}
