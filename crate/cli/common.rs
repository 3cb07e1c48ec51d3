//! Helpers every command shares: reading inputs and writing outputs with errors that name the file.

use std::path::Path;

use lens2logit::raw::CameraParams;

pub fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `microscopy`, `drone`, or the path of a camera JSON file.
pub fn load_camera(arg: &str) -> Result<CameraParams, String> {
    if let Ok(preset) = CameraParams::preset(arg) {
        return Ok(preset);
    }
    let path = Path::new(arg);
    if !path.is_file() {
        return Err(format!(
            "unknown camera '{arg}': use microscopy, drone or a JSON file"
        ));
    }
    let text =
        String::from_utf8(read_file(path)?).map_err(|_| format!("{arg} is not UTF-8 text"))?;
    CameraParams::from_json(&text).map_err(|e| format!("{arg}: {e}"))
}
