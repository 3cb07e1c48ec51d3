//! Raw data the lab makes itself, deterministic and offline: scenes rendered in display RGB and
//! turned into raw mosaics by the inverse ISP.

mod chart;

pub use chart::colour_chart;
