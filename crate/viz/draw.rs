//! Drawing on an [`Rgba`] image: filled rectangles and text labels, so that the experiments'
//! figures carry their labels. The glyphs and their rendering come from embedded-graphics' mono
//! fonts (no font file, no system library, the same natively and in wasm).

use embedded_graphics::mono_font::ascii::{FONT_10X20, FONT_6X10};
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::text::{Baseline, Text};

use super::Rgba;

/// Height of a line of text with its spacing at scale 1 (scale 2 lines are twice as high).
pub const LINE: usize = 11;

/// The font of a text scale: 6 x 10 px glyphs at 1, 10 x 20 px at 2 and above.
fn font(scale: usize) -> &'static MonoFont<'static> {
    if scale >= 2 {
        &FONT_10X20
    } else {
        &FONT_6X10
    }
}

/// An [`Rgba`] image as a target embedded-graphics draws on; pixels outside are dropped.
struct Canvas<'a>(&'a mut Rgba);

impl OriginDimensions for Canvas<'_> {
    fn size(&self) -> Size {
        Size::new(self.0.width as u32, self.0.height as u32)
    }
}

impl DrawTarget for Canvas<'_> {
    type Color = Rgb888;
    type Error = std::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(
        &mut self,
        pixels: I,
    ) -> Result<(), Self::Error> {
        let (w, h) = (self.0.width, self.0.height);
        for Pixel(p, c) in pixels {
            let (Ok(x), Ok(y)) = (usize::try_from(p.x), usize::try_from(p.y)) else {
                continue;
            };
            if x < w && y < h {
                let i = (y * w + x) * 4;
                self.0.data[i..i + 4].copy_from_slice(&[c.r(), c.g(), c.b(), 255]);
            }
        }
        Ok(())
    }
}

/// Sets the pixels of the `w` x `h` rectangle at (`x`, `y`) (clipped to the image) to `rgb`.
pub fn fill(image: &mut Rgba, x: usize, y: usize, w: usize, h: usize, rgb: [u8; 3]) {
    for row in y..(y + h).min(image.height) {
        for col in x..(x + w).min(image.width) {
            let i = (row * image.width + col) * 4;
            image.data[i..i + 4].copy_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
        }
    }
}

/// The width of `text` at `scale`.
pub fn text_width(text: &str, scale: usize) -> usize {
    let f = font(scale);
    text.chars().count() * (f.character_size.width + f.character_spacing) as usize
}

/// Draws `text` with its top left at (`x`, `y`) (clipped to the image).
pub fn text(image: &mut Rgba, x: usize, y: usize, text: &str, scale: usize, rgb: [u8; 3]) {
    let style = MonoTextStyle::new(font(scale), Rgb888::new(rgb[0], rgb[1], rgb[2]));
    let at = Point::new(
        x.min(i32::MAX as usize) as i32,
        y.min(i32::MAX as usize) as i32,
    );
    let Ok(_) = Text::with_baseline(text, at, style, Baseline::Top).draw(&mut Canvas(image));
}

/// A white image of `width` x `height`.
pub fn blank(width: usize, height: usize) -> Rgba {
    Rgba {
        width,
        height,
        data: [255u8; 4].repeat(width * height),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bounding box of the image's dark pixels: (x0, y0, x1, y1), inclusive.
    fn ink(image: &Rgba) -> Option<(usize, usize, usize, usize)> {
        let mut found: Option<(usize, usize, usize, usize)> = None;
        for y in 0..image.height {
            for x in 0..image.width {
                if image.data[(y * image.width + x) * 4] < 128 {
                    found = Some(match found {
                        None => (x, y, x, y),
                        Some((a, b, c, d)) => (a.min(x), b.min(y), c.max(x), d.max(y)),
                    });
                }
            }
        }
        found
    }

    #[test]
    fn text_lands_where_asked_within_its_width_and_clips_at_the_edge() {
        let mut image = blank(80, 30);
        text(&mut image, 5, 4, "menon2007", 1, [0, 0, 0]);
        let (x0, y0, x1, y1) = ink(&image).expect("the text was drawn");
        assert!(x0 >= 5 && y0 >= 4, "starts at its corner: {x0}, {y0}");
        assert!(
            x1 < 5 + text_width("menon2007", 1) && y1 < 4 + LINE,
            "{x1}, {y1}"
        );

        let mut scaled = blank(80, 30);
        text(&mut scaled, 0, 0, "1.5", 2, [0, 0, 0]);
        assert_eq!(text_width("1.5", 2), 30);
        let (_, _, x1, y1) = ink(&scaled).unwrap();
        assert!(x1 < 30 && (LINE..2 * LINE).contains(&y1), "{x1}, {y1}");
        // drawing past the edge is clipped, not a panic
        text(&mut scaled, 75, 25, "menon2007", 2, [0, 0, 0]);
        text(&mut scaled, usize::MAX, usize::MAX, "x", 1, [0, 0, 0]);
    }
}
