//! Images handed to the page: RGBA8 with their size, moved out to JS without a copy.

use wasm_bindgen::prelude::*;

use crate::isp::static_pipeline::RgbImage;
use crate::viz::Rgba;

/// An RGBA8 image ready for `ImageData`.
#[wasm_bindgen]
pub struct RgbaImage {
    width: usize,
    height: usize,
    rgba: Vec<u8>,
}

impl From<Rgba> for RgbaImage {
    fn from(image: Rgba) -> Self {
        Self {
            width: image.width,
            height: image.height,
            rgba: image.data,
        }
    }
}

impl From<&RgbImage> for RgbaImage {
    fn from(image: &RgbImage) -> Self {
        Self {
            width: image.width,
            height: image.height,
            rgba: image.to_rgba8(),
        }
    }
}

impl RgbaImage {
    pub fn new(width: usize, height: usize, rgba: Vec<u8>) -> Self {
        Self {
            width,
            height,
            rgba,
        }
    }
}

#[wasm_bindgen]
impl RgbaImage {
    #[wasm_bindgen(getter)]
    pub fn width(&self) -> usize {
        self.width
    }

    #[wasm_bindgen(getter)]
    pub fn height(&self) -> usize {
        self.height
    }

    /// The pixels, moved out to JS (the image is consumed).
    #[wasm_bindgen(js_name = takeRgba)]
    pub fn take_rgba(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.rgba)
    }
}
