//! All 12 static views of one 256x256 tile, natively: the median over repeated runs, as JSON.
//! `cargo bench --bench static_views -- [TILE] [REPEATS]`; tests/bench/run.mjs puts it beside the
//! Python reference and the browser.

use std::time::Instant;

// As in the CLI: the pipeline allocates whole planes, which glibc's malloc serves with fresh
// mmap'd pages (page faults on every plane).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use lens2logit::isp::static_pipeline::{render_all, View};
use lens2logit::raw::{decode_tile, CameraParams};
use lens2logit::train::bench::median;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let tile_path = args.first().cloned().unwrap_or_else(|| {
        format!(
            "{}/../shared/data/raw2logit-demo/micro.png",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    let repeats: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(50);
    let tile = decode_tile(&std::fs::read(&tile_path).expect("read tile"), &tile_path)
        .expect("decode tile");
    let camera = CameraParams::microscopy();
    let views = View::paper_views();
    render_all(&tile, &camera, &views).unwrap(); // warm-up
    let times: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(render_all(&tile, &camera, &views).unwrap());
            start.elapsed().as_secs_f64()
        })
        .collect();
    println!(
        "{{\"native_all_12_views_s\": {}, \"repeats\": {repeats}, \"threads\": {}}}",
        median(times),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
}
