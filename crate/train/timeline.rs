//! The gradient timeline as the paper's videos show it: one frame per snapshot, the per-stage
//! |gradient| above the stage outputs, stages left to right in the pipeline's order, as an
//! animated GIF.

use super::Snapshot;
use crate::viz::{self, Rgba};
use crate::{Error, Result};

/// Pixels between tiles (white).
const GAP: usize = 2;
/// Each frame's time on screen, in hundredths of a second (the page plays at the same pace).
const FRAME_DELAY: u16 = 40;

/// The snapshots as an animated GIF: a frame per snapshot, two rows of one tile per stage. Each
/// stage's gradient maps share one scale over the whole timeline (the 99th percentile of its
/// largest), so that growth and decay over training show.
pub fn timeline_gif(snapshots: &[Snapshot]) -> Result<Vec<u8>> {
    let first = snapshots.first().ok_or_else(|| {
        Error::invalid(
            "no gradient snapshots: the session kept no timeline (set a snapshot interval)",
        )
    })?;
    let (h, w, stages) = (first.height, first.width, first.stages.len());
    if snapshots
        .iter()
        .any(|s| (s.height, s.width, s.stages.len()) != (h, w, stages))
    {
        return Err(Error::invalid(
            "the snapshots differ in size: no single animation fits them",
        ));
    }
    let scales: Vec<f32> = (0..stages)
        .map(|k| {
            snapshots
                .iter()
                .map(|s| viz::robust_max(&s.stages[k].1))
                .fold(0.0, f32::max)
        })
        .collect();
    let width = stages * w + (stages - 1) * GAP;
    let rows = if first.outputs.is_empty() { 1 } else { 2 };
    let height = rows * h + (rows - 1) * GAP;
    let (Ok(gif_w), Ok(gif_h)) = (u16::try_from(width), u16::try_from(height)) else {
        return Err(Error::invalid(format!(
            "a {width}x{height} timeline is larger than a GIF frame may be"
        )));
    };
    let mut out = Vec::new();
    {
        let failed =
            |e: gif::EncodingError| Error::invalid(format!("writing the timeline GIF: {e}"));
        let mut encoder = gif::Encoder::new(&mut out, gif_w, gif_h, &[]).map_err(failed)?;
        encoder.set_repeat(gif::Repeat::Infinite).map_err(failed)?;
        for s in snapshots {
            let mut canvas = vec![255u8; width * height * 4];
            for (k, ((_, values), &scale)) in s.stages.iter().zip(&scales).enumerate() {
                let x = k * (w + GAP);
                let map = viz::heatmap(values, w, h, scale);
                blit(&mut canvas, width, &map, x, 0);
                if rows == 2 {
                    blit(&mut canvas, width, &s.output_image(k)?, x, h + GAP);
                }
            }
            // NeuQuant's speed 20: a close palette in a fraction of speed 1's time
            let mut frame = gif::Frame::from_rgba_speed(gif_w, gif_h, &mut canvas, 20);
            frame.delay = FRAME_DELAY;
            encoder.write_frame(&frame).map_err(failed)?;
        }
    }
    Ok(out)
}

/// Copies `tile` into the RGBA `canvas` (`width` px a row) with its corner at (x, y).
fn blit(canvas: &mut [u8], width: usize, tile: &Rgba, x: usize, y: usize) {
    for row in 0..tile.height {
        let from = row * tile.width * 4;
        let to = ((y + row) * width + x) * 4;
        canvas[to..to + tile.width * 4].copy_from_slice(&tile.data[from..from + tile.width * 4]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(step: usize, gradient: f32) -> Snapshot {
        Snapshot {
            phase: "train".into(),
            step,
            height: 4,
            width: 6,
            stages: (0..5)
                .map(|k| (format!("s{k}"), vec![gradient * k as f32; 24]))
                .collect(),
            outputs: (0..5).map(|_| vec![0.5; 72]).collect(),
        }
    }

    #[test]
    fn a_frame_per_snapshot_with_both_rows() {
        let bytes = timeline_gif(&[snapshot(1, 1.0), snapshot(2, 2.0), snapshot(3, 0.5)]).unwrap();
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::RGBA);
        let mut decoder = options.read_info(bytes.as_slice()).unwrap();
        assert_eq!(
            (decoder.width(), decoder.height()),
            (5 * 6 + 4 * 2, 2 * 4 + 2)
        );
        let mut frames = 0;
        let mut last_stage = Vec::new();
        while let Some(frame) = decoder.read_next_frame().unwrap() {
            frames += 1;
            assert_eq!(frame.delay, FRAME_DELAY);
            // the last stage's gradient tile (top right): brighter when its gradient is larger
            let px = (4 * (6 + 2) + 3) * 4;
            last_stage.push(
                frame.buffer[px..px + 3]
                    .iter()
                    .map(|&v| v as u32)
                    .sum::<u32>(),
            );
        }
        assert_eq!(frames, 3);
        assert!(
            last_stage[1] > last_stage[0] && last_stage[0] > last_stage[2],
            "{last_stage:?}"
        );
        assert!(timeline_gif(&[])
            .unwrap_err()
            .to_string()
            .contains("no gradient snapshots"));
    }
}
