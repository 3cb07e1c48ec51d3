//! Images handed to the page: RGBA8 with their size, moved out to JS without a copy.

use wasm_bindgen::prelude::*;

use lens2logit::isp::static_pipeline::RgbImage;
use lens2logit::viz::Rgba;

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

/// An image with a caption.
#[wasm_bindgen]
pub struct LabelledImage {
    label: String,
    image: RgbaImage,
}

impl LabelledImage {
    pub fn new(label: String, image: RgbaImage) -> Self {
        Self { label, image }
    }
}

#[wasm_bindgen]
impl LabelledImage {
    #[wasm_bindgen(getter)]
    pub fn label(&self) -> String {
        self.label.clone()
    }

    /// The image, moved out to JS (the pair is consumed).
    #[wasm_bindgen(js_name = takeImage)]
    pub fn take_image(&mut self) -> RgbaImage {
        std::mem::replace(&mut self.image, RgbaImage::new(0, 0, Vec::new()))
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
