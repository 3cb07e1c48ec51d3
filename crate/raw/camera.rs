//! Camera parameters: what the static and the parametrized ISP need to know about a sensor.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Black level per Bayer site (R, G on R rows, G on B rows, B), white balance gains (R, G, B), a
/// row-major 3x3 colour matrix (out_l = sum_k M[l,k] rgb_k) and the display gamma.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraParams {
    pub black_level: [f64; 4],
    pub white_balance: [f64; 3],
    pub colour_matrix: [f64; 9],
    #[serde(default = "default_gamma")]
    pub gamma: f64,
}

fn default_gamma() -> f64 {
    2.2
}

impl CameraParams {
    /// Raw-Microscopy's camera, as the paper's code sets it.
    pub fn microscopy() -> Self {
        Self {
            black_level: [9.834368023181512e-06; 4],
            white_balance: [-0.6567, 1.9673, 3.5304],
            colour_matrix: [
                -2.0338, 0.0933, 0.4157, -0.0286, 2.6464, -0.0574, -0.5516, -0.0947, 2.9308,
            ],
            gamma: 2.2,
        }
    }

    /// Raw-Drone's camera, as the paper's code sets it.
    pub fn drone() -> Self {
        Self {
            black_level: [0.0625, 0.0626, 0.0625, 0.0626],
            white_balance: [2.86653646, 1.0, 1.73079425],
            colour_matrix: [
                1.50768983,
                -0.33571374,
                -0.17197604,
                -0.23048614,
                1.70698738,
                -0.47650126,
                -0.03119153,
                -0.32803956,
                1.35923111,
            ],
            gamma: 2.2,
        }
    }

    /// A preset by name (`microscopy`, `drone`).
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "microscopy" => Ok(Self::microscopy()),
            "drone" => Ok(Self::drone()),
            other => Err(Error::invalid(format!(
                "unknown camera '{other}': use microscopy, drone or a JSON file"
            ))),
        }
    }

    /// Parses `{"black_level":[4], "white_balance":[3], "colour_matrix":[9], "gamma":2.2}`.
    pub fn from_json(text: &str) -> Result<Self> {
        let params: Self =
            serde_json::from_str(text).map_err(|e| Error::decode("camera JSON", e))?;
        params.validate()?;
        Ok(params)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("camera parameters always serialise")
    }

    /// Every value finite and a positive gamma: anything else turns the whole image into NaN.
    pub fn validate(&self) -> Result<()> {
        let all = self
            .black_level
            .iter()
            .chain(&self.white_balance)
            .chain(&self.colour_matrix);
        if all.clone().any(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "camera parameters must be finite numbers (found NaN or infinity)",
            ));
        }
        if !(self.gamma.is_finite() && self.gamma > 0.0) {
            return Err(Error::invalid(format!(
                "gamma must be a positive number, got {}",
                self.gamma
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_default_gamma() {
        let cam = CameraParams::drone();
        assert_eq!(CameraParams::from_json(&cam.to_json()).unwrap(), cam);
        let text = r#"{"black_level":[0,0,0,0],"white_balance":[1,1,1],"colour_matrix":[1,0,0,0,1,0,0,0,1]}"#;
        assert_eq!(CameraParams::from_json(text).unwrap().gamma, 2.2);
    }

    #[test]
    fn json_errors_are_readable() {
        let err = CameraParams::from_json(r#"{"black_level":[0,0,0]}"#).unwrap_err();
        assert!(err.to_string().contains("camera JSON"), "{err}");
        let bad_gamma = r#"{"black_level":[0,0,0,0],"white_balance":[1,1,1],"colour_matrix":[1,0,0,0,1,0,0,0,1],"gamma":0}"#;
        assert!(CameraParams::from_json(bad_gamma).is_err());
        assert!(CameraParams::preset("phone").is_err());
    }
}
