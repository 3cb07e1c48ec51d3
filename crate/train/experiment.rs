//! The paper's experiments as single actions, and the tables they end in: the 12 x 12 synthesis
//! table (a model trained on each static view in turn, each tested on all 12 views and the
//! intensity levels), built from sessions' summaries or gathered from row jobs (one training view
//! each, e.g. the tasks of a job array); forensics' per-group drops, largest first; optimisation's
//! final metric per phase. As CSV and as labelled figures (PNG through `crate::codecs::png8`).

use crate::codecs::csv_text;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Summary;
use crate::isp::static_pipeline::View;
use crate::viz::draw::{blank, fill, text, text_width, LINE};
use crate::viz::{colour, Rgba};
use crate::{Error, Result};

/// The intensity (%) of the 12 x 12 table: the views as the datasets hold them, at full light.
pub const MATRIX_INTENSITY: u32 = 100;

/// view -> intensity -> metric: what a synthesis session measures of one trained model.
pub type ViewTable = BTreeMap<String, BTreeMap<u32, f32>>;

/// The synthesis experiment's results, whole or in part (the rows one job trained).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthesisTable {
    /// `accuracy` or `iou`.
    pub metric: String,
    /// The intensity levels every row was tested at, in the order of the intensity table.
    pub intensities: Vec<u32>,
    /// What every row shares (task, model, data, steps, seed, ...): rows trained with different
    /// settings are not one table, and gathering them is refused.
    pub settings: BTreeMap<String, String>,
    /// Training view -> the model's table on every test view.
    pub rows: BTreeMap<String, ViewTable>,
}

impl SynthesisTable {
    /// Levels a table can be made of: [`MATRIX_INTENSITY`] among them, none twice.
    pub fn check_intensities(intensities: &[u32]) -> Result<()> {
        if !intensities.contains(&MATRIX_INTENSITY) {
            return Err(Error::invalid(format!(
                "the 12 x 12 table is at intensity {MATRIX_INTENSITY}: include {MATRIX_INTENSITY} in the intensities"
            )));
        }
        let mut seen = intensities.to_vec();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != intensities.len() {
            return Err(Error::invalid(format!(
                "the intensities {intensities:?} repeat a level"
            )));
        }
        Ok(())
    }

    pub fn new(
        metric: &str,
        intensities: &[u32],
        settings: BTreeMap<String, String>,
    ) -> Result<Self> {
        Self::check_intensities(intensities)?;
        Ok(Self {
            metric: metric.to_string(),
            intensities: intensities.to_vec(),
            settings,
            rows: BTreeMap::new(),
        })
    }

    /// Adds the row of a model trained on `view`: its synthesis session's summary.
    pub fn add_row(&mut self, view: View, summary: &Summary) -> Result<()> {
        if summary.mode != "synthesis" {
            return Err(Error::invalid(format!(
                "a {} session has no drift table: the synthesis table takes synthesis sessions",
                summary.mode
            )));
        }
        if summary.metric != self.metric {
            return Err(Error::invalid(format!(
                "the session measured {}, the table holds {}",
                summary.metric, self.metric
            )));
        }
        let name = view.to_string();
        if self.rows.contains_key(&name) {
            return Err(Error::invalid(format!(
                "the table already has a row for training view {name}"
            )));
        }
        self.check_row(&name, &summary.views)?;
        self.rows.insert(name, summary.views.clone());
        Ok(())
    }

    /// A row names a paper view and holds every test view at every intensity of the table.
    fn check_row(&self, train_view: &str, row: &ViewTable) -> Result<()> {
        train_view.parse::<View>()?;
        for view in View::paper_views() {
            let tested = row.get(&view.to_string());
            for &intensity in &self.intensities {
                if tested.and_then(|t| t.get(&intensity)).is_none() {
                    return Err(Error::invalid(format!(
                        "the row of training view {train_view} has no metric for test view {view} at intensity {intensity}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The paper's views that have a row, in the paper's order.
    pub fn train_views(&self) -> Vec<View> {
        View::paper_views()
            .into_iter()
            .filter(|v| self.rows.contains_key(&v.to_string()))
            .collect()
    }

    /// The paper's views that have no row yet, in the paper's order.
    pub fn missing(&self) -> Vec<View> {
        View::paper_views()
            .into_iter()
            .filter(|v| !self.rows.contains_key(&v.to_string()))
            .collect()
    }

    fn cell(&self, train: &View, test: &str, intensity: u32) -> Option<f32> {
        self.rows
            .get(&train.to_string())?
            .get(test)?
            .get(&intensity)
            .copied()
    }

    /// The test views: the paper's 12 in its order, then any other the rows were tested on (a
    /// camera twin, `twin:NAME`).
    pub fn test_views(&self) -> Vec<String> {
        let mut views: Vec<String> = View::paper_views().iter().map(View::to_string).collect();
        let mut others: Vec<String> = self
            .rows
            .values()
            .flat_map(|row| row.keys())
            .filter(|k| !views.contains(k))
            .cloned()
            .collect();
        others.sort_unstable();
        others.dedup();
        views.extend(others);
        views
    }

    /// Rows: training views; columns: [`SynthesisTable::test_views`]; the metric at
    /// [`MATRIX_INTENSITY`].
    pub fn matrix(&self) -> Vec<(View, Vec<Option<f32>>)> {
        let tests = self.test_views();
        self.train_views()
            .into_iter()
            .map(|train| {
                let cells = tests
                    .iter()
                    .map(|test| self.cell(&train, test, MATRIX_INTENSITY))
                    .collect();
                (train, cells)
            })
            .collect()
    }

    /// Rows: training views; columns: the intensities; the metric of the training view on itself.
    pub fn by_intensity(&self) -> Vec<(View, Vec<Option<f32>>)> {
        self.train_views()
            .into_iter()
            .map(|train| {
                let cells = self
                    .intensities
                    .iter()
                    .map(|&i| self.cell(&train, &train.to_string(), i))
                    .collect();
                (train, cells)
            })
            .collect()
    }

    /// `synthesis_12x12.csv`: `train_view,<the 12 test views>` (and a camera twin's column where
    /// the rows have one), 4 decimals.
    pub fn matrix_csv(&self) -> String {
        table_csv(&self.test_views(), &self.matrix())
    }

    /// `synthesis_intensity.csv`: `train_view,<intensities>`, 4 decimals.
    pub fn intensity_csv(&self) -> String {
        let header: Vec<String> = self.intensities.iter().map(u32::to_string).collect();
        table_csv(&header, &self.by_intensity())
    }

    /// The 12 x 12 table as a heatmap: training views down (numbered), test views across (by
    /// the same numbers), each cell's value printed in it.
    pub fn matrix_image(&self) -> Rgba {
        let all = View::paper_views();
        let number = |v: &View| all.iter().position(|a| a == v).map_or(0, |i| i + 1);
        let rows = self.matrix();
        let labels: Vec<String> = rows
            .iter()
            .map(|(v, _)| format!("{:>2} {v}", number(v)))
            .collect();
        // the paper's views by number, then a camera twin (its name is in the CSV)
        let columns: Vec<String> = (0..self.test_views().len())
            .map(|i| match i < all.len() {
                true => (i + 1).to_string(),
                false => "twin".into(),
            })
            .collect();
        let cells: Vec<Vec<Option<f32>>> = rows.into_iter().map(|(_, c)| c).collect();
        let title = format!(
            "{} at {MATRIX_INTENSITY}%: trained on the row's view, tested on the column's",
            self.metric
        );
        heatmap(&title, &labels, &columns, &cells)
    }

    /// The intensity table as a heatmap: training views down, intensities across.
    pub fn intensity_image(&self) -> Rgba {
        let rows = self.by_intensity();
        let labels: Vec<String> = rows.iter().map(|(v, _)| v.to_string()).collect();
        let columns: Vec<String> = self.intensities.iter().map(|i| format!("{i}%")).collect();
        let cells: Vec<Vec<Option<f32>>> = rows.into_iter().map(|(_, c)| c).collect();
        let title = format!(
            "{} of each view's model on its own view, by intensity",
            self.metric
        );
        heatmap(&title, &labels, &columns, &cells)
    }

    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self)
            .map_err(|e| Error::invalid(format!("the synthesis table as JSON: {e}")))
    }

    /// A table as [`SynthesisTable::to_json`] wrote it, every row checked.
    pub fn from_json(bytes: &[u8], what: &str) -> Result<Self> {
        let table: Self = serde_json::from_slice(bytes).map_err(|e| Error::decode(what, e))?;
        let mut checked = Self::new(&table.metric, &table.intensities, table.settings)
            .map_err(|e| Error::decode(what, e))?;
        for (view, row) in table.rows {
            checked
                .check_row(&view, &row)
                .map_err(|e| Error::decode(what, e))?;
            checked.rows.insert(view, row);
        }
        Ok(checked)
    }

    /// One table from the parts that row jobs wrote, each named by where it came from. The parts
    /// must share metric, intensities and settings; a training view in two parts is taken once
    /// when both hold the same numbers and refused when they differ.
    pub fn gather(parts: &[(String, SynthesisTable)]) -> Result<Self> {
        let Some((first_source, first)) = parts.first() else {
            return Err(Error::invalid("no rows to gather"));
        };
        let mut out = Self {
            rows: BTreeMap::new(),
            ..first.clone()
        };
        let mut sources: BTreeMap<String, &str> = BTreeMap::new();
        for (source, part) in parts {
            if part.metric != out.metric {
                return Err(Error::invalid(format!(
                    "{source} measured {}, {first_source} {}: not one experiment",
                    part.metric, out.metric
                )));
            }
            if part.intensities != out.intensities {
                return Err(Error::invalid(format!(
                    "{source} was tested at intensities {:?}, {first_source} at {:?}: not one experiment",
                    part.intensities, out.intensities
                )));
            }
            if let Some(key) = differing_key(&part.settings, &out.settings) {
                let show = |s: &BTreeMap<String, String>| {
                    s.get(&key).cloned().unwrap_or_else(|| "(unset)".into())
                };
                return Err(Error::invalid(format!(
                    "{source} has {key} = {}, {first_source} {key} = {}: not one experiment",
                    show(&part.settings),
                    show(&out.settings)
                )));
            }
            for (view, row) in &part.rows {
                out.check_row(view, row)
                    .map_err(|e| Error::invalid(format!("{source}: {e}")))?;
                match out.rows.get(view) {
                    Some(kept) if kept == row => {}
                    Some(_) => {
                        return Err(Error::invalid(format!(
                            "training view {view} is in {} and in {source} with different numbers: keep one of them",
                            sources[view]
                        )))
                    }
                    None => {
                        out.rows.insert(view.clone(), row.clone());
                        sources.insert(view.clone(), source);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The first key whose value differs between two settings, either side missing it included.
fn differing_key(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Option<String> {
    a.keys()
        .chain(b.keys())
        .find(|k| a.get(*k) != b.get(*k))
        .cloned()
}

/// A CSV of labelled rows: `train_view,<header>`, cells with 4 decimals (empty where missing).
fn table_csv(header: &[String], rows: &[(View, Vec<Option<f32>>)]) -> String {
    let rows = rows.iter().map(|(view, cells)| {
        let cells = cells
            .iter()
            .map(|c| c.map_or(String::new(), |m| format!("{m:.4}")));
        std::iter::once(view.to_string()).chain(cells)
    });
    csv_text(
        std::iter::once("train_view").chain(header.iter().map(String::as_str)),
        rows,
    )
}

/// Figures' text scale (font pixels per image pixel), margin, and a heatmap cell's size and gap.
const SCALE: usize = 2;
const MARGIN: usize = 8;
const CELL_W: usize = 72;
const CELL_H: usize = 26;
const GAP: usize = 1;
/// Height of the colour scale strip under a heatmap.
const STRIP: usize = 12;
const INK: [u8; 3] = [0, 0, 0];
const MISSING_CELL: [u8; 3] = [160, 160, 160];

/// A heatmap with a title, column labels above, row labels to the left and each cell's value in
/// it; the colours (inferno) span the lowest to the highest value, which the scale strip below
/// names. A missing cell is grey.
fn heatmap(title: &str, rows: &[String], columns: &[String], cells: &[Vec<Option<f32>>]) -> Rgba {
    let line = LINE * SCALE;
    let widest = |labels: &[String]| labels.iter().map(|l| text_width(l, SCALE)).max();
    let x0 = MARGIN + widest(rows).map_or(0, |w| w + MARGIN);
    let y0 = MARGIN + 2 * line;
    let grid_w = GAP + columns.len() * (CELL_W + GAP);
    let grid_h = GAP + rows.len() * (CELL_H + GAP);
    let strip_y = y0 + grid_h + MARGIN;
    let width = (x0 + grid_w).max(MARGIN + text_width(title, SCALE)) + MARGIN;
    let height = strip_y + STRIP + 4 + line + MARGIN;
    let mut image = blank(width, height);
    text(&mut image, MARGIN, MARGIN, title, SCALE, INK);

    let values = cells.iter().flatten().flatten().copied();
    let lo = values.clone().fold(f32::INFINITY, f32::min);
    let hi = values.fold(f32::NEG_INFINITY, f32::max);
    let scale = |m: f32| match hi - lo > 1e-9 {
        true => f64::from((m - lo) / (hi - lo)),
        false => 0.5,
    };
    for (c, label) in columns.iter().enumerate() {
        let x = x0 + GAP + c * (CELL_W + GAP) + CELL_W.saturating_sub(text_width(label, SCALE)) / 2;
        text(&mut image, x, MARGIN + line, label, SCALE, INK);
    }
    for (r, label) in rows.iter().enumerate() {
        let y = y0 + GAP + r * (CELL_H + GAP);
        text(&mut image, MARGIN, y + 3, label, SCALE, INK);
        for (c, cell) in cells[r].iter().enumerate() {
            let x = x0 + GAP + c * (CELL_W + GAP);
            let Some(m) = cell else {
                fill(&mut image, x, y, CELL_W, CELL_H, MISSING_CELL);
                continue;
            };
            let rgb = colour(scale(*m));
            fill(&mut image, x, y, CELL_W, CELL_H, rgb);
            let value = format!("{m:.3}");
            let dx = CELL_W.saturating_sub(text_width(&value, SCALE)) / 2;
            text(&mut image, x + dx, y + 6, &value, SCALE, legible_on(rgb));
        }
    }
    for x in 0..grid_w {
        let rgb = colour(x as f64 / (grid_w.max(2) - 1) as f64);
        fill(&mut image, x0 + x, strip_y, 1, STRIP, rgb);
    }
    if lo <= hi {
        let (low, high) = (format!("{lo:.4}"), format!("{hi:.4}"));
        let y = strip_y + STRIP + 4;
        text(&mut image, x0, y, &low, SCALE, INK);
        let right = (x0 + grid_w).saturating_sub(text_width(&high, SCALE));
        text(&mut image, right, y, &high, SCALE, INK);
    }
    image
}

/// Black or white, whichever reads on `rgb`.
fn legible_on(rgb: [u8; 3]) -> [u8; 3] {
    let luma = 0.299 * f64::from(rgb[0]) + 0.587 * f64::from(rgb[1]) + 0.114 * f64::from(rgb[2]);
    if luma > 128.0 {
        [0, 0, 0]
    } else {
        [255, 255, 255]
    }
}

/// Forensics: (group, metric before, after, drop), the largest drop first (ties by name).
pub fn forensics_ranking(summary: &Summary) -> Vec<(String, f32, f32, f32)> {
    let mut rows: Vec<_> = summary
        .forensics
        .iter()
        .map(|(g, &(before, after, drop))| (g.clone(), before, after, drop))
        .collect();
    rows.sort_by(|a, b| b.3.total_cmp(&a.3).then_with(|| a.0.cmp(&b.0)));
    rows
}

/// `forensics.csv`: `group,before,after,drop`, the largest drop first.
pub fn forensics_csv(ranking: &[(String, f32, f32, f32)]) -> String {
    let rows = ranking.iter().map(|(group, before, after, drop)| {
        [
            group.clone(),
            format!("{before:.4}"),
            format!("{after:.4}"),
            format!("{drop:.4}"),
        ]
    });
    csv_text(["group", "before", "after", "drop"], rows)
}

/// Length of a bar of metric 1 in the forensics chart, a bar's height and a row's.
const BAR: usize = 300;
const BAR_HEIGHT: usize = 20;
const BAR_ROW: usize = 26;

/// Forensics as bars, a row per group in ranking order, on a scale from 0 to 1: the metric before
/// the attack in grey behind the metric after it in the colour of its drop (inferno, 0 dark to 1
/// bright); the numbers beside them.
pub fn forensics_image(metric: &str, ranking: &[(String, f32, f32, f32)]) -> Rgba {
    let line = LINE * SCALE;
    let title = format!("{metric} before (grey) and after (colour) each group's attack");
    let groups: Vec<String> = ranking.iter().map(|r| r.0.clone()).collect();
    let notes: Vec<String> = ranking
        .iter()
        .map(|(_, before, after, drop)| format!("{before:.3} -> {after:.3} (drop {drop:.3})"))
        .collect();
    let widest = |labels: &[String]| {
        labels
            .iter()
            .map(|l| text_width(l, SCALE))
            .max()
            .unwrap_or(0)
    };
    let x0 = 2 * MARGIN + widest(&groups);
    let y0 = MARGIN + line + MARGIN;
    let width =
        (x0 + BAR + MARGIN + widest(&notes)).max(MARGIN + text_width(&title, SCALE)) + MARGIN;
    let height = y0 + ranking.len() * BAR_ROW + MARGIN;
    let mut image = blank(width, height);
    text(&mut image, MARGIN, MARGIN, &title, SCALE, INK);
    let length = |m: f32| (m.clamp(0.0, 1.0) * BAR as f32).round() as usize;
    for (r, (group, before, after, drop)) in ranking.iter().enumerate() {
        let y = y0 + r * BAR_ROW;
        text(&mut image, MARGIN, y + 4, group, SCALE, INK);
        // the scale's extent, so that short bars read against it
        fill(&mut image, x0, y, BAR, BAR_HEIGHT, [238, 238, 238]);
        fill(
            &mut image,
            x0,
            y,
            length(*before),
            BAR_HEIGHT,
            [170, 170, 170],
        );
        let rgb = colour(0.25 + 0.75 * f64::from(drop.clamp(0.0, 1.0)));
        fill(&mut image, x0, y + 4, length(*after), BAR_HEIGHT - 8, rgb);
        text(&mut image, x0 + BAR + MARGIN, y + 4, &notes[r], SCALE, INK);
    }
    image
}

/// `optimisation.csv`: `phase,final_metric`, the phases in the order they ran.
pub fn optimisation_csv(summary: &Summary) -> String {
    let ran = summary.phase_order.iter();
    // phases that never ran a step (none in the lab's modes) still have their final metric
    let rest = summary
        .final_metric
        .keys()
        .filter(|p| !summary.phase_order.contains(p));
    let rows = ran.chain(rest).filter_map(|phase| {
        let metric = summary.final_metric.get(phase)?;
        Some([phase.clone(), format!("{metric:.4}")])
    });
    csv_text(["phase", "final_metric"], rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEVELS: [u32; 2] = [100, 10];

    fn views() -> Vec<String> {
        View::paper_views().iter().map(View::to_string).collect()
    }

    /// A distinct metric for every (training view, test view, intensity).
    fn metric(train: usize, test: usize, intensity: u32) -> f32 {
        (train * 12 + test) as f32 / 256.0 + intensity as f32 / 1e4
    }

    fn summary(train: usize) -> Summary {
        let mut s = Summary {
            mode: "synthesis".into(),
            metric: "accuracy".into(),
            ..Default::default()
        };
        for (test, v) in views().iter().enumerate() {
            let row = LEVELS
                .iter()
                .map(|&i| (i, metric(train, test, i)))
                .collect();
            s.views.insert(v.clone(), row);
        }
        s
    }

    fn settings(steps: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("steps".to_string(), steps.to_string()),
            ("seed".to_string(), "0".to_string()),
        ])
    }

    fn table(trains: &[usize]) -> SynthesisTable {
        let mut t = SynthesisTable::new("accuracy", &LEVELS, settings("2")).unwrap();
        for &train in trains {
            let view = View::paper_views()[train];
            t.add_row(view, &summary(train)).unwrap();
        }
        t
    }

    fn cells(line: &str) -> Vec<&str> {
        line.split(',').collect()
    }

    #[test]
    fn the_matrix_puts_each_training_view_in_its_row_and_each_test_view_in_its_column() {
        // rows added out of order come out in the paper's order
        let t = table(&[7, 0, 11]);
        let csv = t.matrix_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4);
        let header = cells(lines[0]);
        assert_eq!(header[0], "train_view");
        assert_eq!(
            header[1..],
            views().iter().map(String::as_str).collect::<Vec<_>>()[..]
        );
        for (line, train) in lines[1..].iter().zip([0, 7, 11]) {
            let row = cells(line);
            assert_eq!(row[0], views()[train]);
            assert_eq!(row.len(), 13);
            for test in 0..12 {
                assert_eq!(row[1 + test], format!("{:.4}", metric(train, test, 100)));
            }
        }
        // training on menon2007-unsharp_masking-median_denoising, testing on bilinear-...
        assert_eq!(
            cells(lines[3])[1],
            format!("{:.4}", (11 * 12) as f32 / 256.0 + 0.01)
        );
        assert_eq!(
            t.missing().len(),
            9,
            "{:?}",
            t.missing().iter().map(View::to_string).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_camera_twins_column_follows_the_twelve() {
        let mut t = table(&[0, 1]);
        for row in t.rows.values_mut() {
            row.insert("twin:mine".into(), BTreeMap::from([(100, 0.3), (10, 0.1)]));
        }
        let csv = t.matrix_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(cells(lines[0]).len(), 14, "{}", lines[0]);
        assert!(
            lines[0].ends_with(",twin:mine") && lines[1].ends_with(",0.3000"),
            "{csv}"
        );
        let image = t.matrix_image();
        assert!(image.width > table(&[0, 1]).matrix_image().width);
    }

    #[test]
    fn the_intensity_table_is_each_training_view_on_itself() {
        let t = table(&[3, 5]);
        let csv = t.intensity_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "train_view,100,10");
        for (line, train) in lines[1..].iter().zip([3, 5]) {
            let row = cells(line);
            assert_eq!(row[0], views()[train]);
            assert_eq!(row[1], format!("{:.4}", metric(train, train, 100)));
            assert_eq!(row[2], format!("{:.4}", metric(train, train, 10)));
        }
    }

    #[test]
    fn rows_are_checked_before_they_are_kept() {
        let e = SynthesisTable::new("accuracy", &[50, 10], settings("2")).unwrap_err();
        assert!(e.to_string().contains("include 100"), "{e}");
        let e = SynthesisTable::new("accuracy", &[100, 100], settings("2")).unwrap_err();
        assert!(e.to_string().contains("repeat"), "{e}");

        let mut t = table(&[0]);
        let e = t.add_row(View::paper_views()[0], &summary(0)).unwrap_err();
        assert!(e.to_string().contains("already has a row"), "{e}");
        let mut partial = summary(1);
        partial.views.remove(&views()[4]);
        let e = t.add_row(View::paper_views()[1], &partial).unwrap_err();
        assert!(
            e.to_string().contains(&format!("test view {}", views()[4])),
            "{e}"
        );
        let mut forensics = summary(1);
        forensics.mode = "forensics".into();
        assert!(t.add_row(View::paper_views()[1], &forensics).is_err());
        let mut iou = summary(1);
        iou.metric = "iou".into();
        assert!(t.add_row(View::paper_views()[1], &iou).is_err());
        assert_eq!(t.rows.len(), 1);
    }

    #[test]
    fn a_table_survives_its_json_and_a_broken_one_is_refused() {
        let t = table(&[0, 4]);
        let back = SynthesisTable::from_json(&t.to_json().unwrap(), "t.json").unwrap();
        assert_eq!(back, t);
        let mut broken = t.clone();
        broken
            .rows
            .get_mut(&views()[4])
            .unwrap()
            .remove(&views()[9]);
        let e = SynthesisTable::from_json(&broken.to_json().unwrap(), "t.json").unwrap_err();
        assert!(e.to_string().contains("t.json"), "{e}");
        let mut unknown = t.clone();
        let row = unknown.rows[&views()[0]].clone();
        unknown.rows.insert("bicubic-x-y".into(), row);
        assert!(SynthesisTable::from_json(&unknown.to_json().unwrap(), "t.json").is_err());
    }

    #[test]
    fn gathering_joins_rows_and_refuses_what_is_not_one_experiment() {
        let whole = table(&(0..12).collect::<Vec<_>>());
        let parts: Vec<(String, SynthesisTable)> =
            (0..12).map(|i| (format!("job{i}"), table(&[i]))).collect();
        let gathered = SynthesisTable::gather(&parts).unwrap();
        assert_eq!(gathered, whole);
        assert!(gathered.missing().is_empty());
        assert_eq!(gathered.matrix_csv(), whole.matrix_csv());

        // a rerun of the same job with the same numbers is taken once
        let again = [parts[2].clone(), parts[2].clone(), parts[5].clone()];
        let two = SynthesisTable::gather(&again).unwrap();
        assert_eq!(two.train_views().len(), 2);
        assert_eq!(
            two.missing().len(),
            10,
            "what a partial gather lacks is named"
        );

        let mut other = table(&[2]);
        *other
            .rows
            .get_mut(&views()[2])
            .unwrap()
            .get_mut(&views()[0])
            .unwrap()
            .get_mut(&100)
            .unwrap() += 0.5;
        let e = SynthesisTable::gather(&[parts[2].clone(), ("rerun".into(), other)]).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains(&views()[2]) && e.contains("job2") && e.contains("rerun"),
            "{e}"
        );

        let mut longer = table(&[3]);
        longer.settings = settings("40");
        let e = SynthesisTable::gather(&[parts[2].clone(), ("long".into(), longer)]).unwrap_err();
        assert!(e.to_string().contains("steps = 40"), "{e}");

        let mut levels = SynthesisTable::new("accuracy", &[100], settings("2")).unwrap();
        levels.rows.clear();
        let e = SynthesisTable::gather(&[parts[2].clone(), ("levels".into(), levels)]).unwrap_err();
        assert!(e.to_string().contains("intensities"), "{e}");
        assert!(SynthesisTable::gather(&[]).is_err());
    }

    #[test]
    fn heatmap_colours_span_the_lowest_to_the_highest_cell() {
        let t = table(&[0, 1]);
        let image = t.matrix_image();
        // the widest row label is the first: " 1 bilinear-sharpening_filter-gaussian_denoising"
        let x0 = MARGIN + text_width(&format!(" 1 {}", views()[0]), SCALE) + MARGIN;
        let y0 = MARGIN + 2 * LINE * SCALE;
        assert_eq!(image.width, x0 + GAP + 12 * (CELL_W + GAP) + MARGIN);
        let corner = |r: usize, c: usize| {
            let (x, y) = (x0 + GAP + c * (CELL_W + GAP), y0 + GAP + r * (CELL_H + GAP));
            let i = (y * image.width + x) * 4;
            [image.data[i], image.data[i + 1], image.data[i + 2]]
        };
        // the lowest cell is (training view 0, test view 0), the highest (1, 11)
        assert_eq!(corner(0, 0), colour(0.0));
        assert_eq!(corner(1, 11), colour(1.0));
        let (lo, hi) = (metric(0, 0, 100), metric(1, 11, 100));
        let between = (metric(1, 6, 100) - lo) / (hi - lo);
        assert_eq!(corner(1, 6), colour(f64::from(between)));
        assert_eq!(t.intensity_image().height, image.height);
    }

    #[test]
    fn forensics_rank_by_drop_and_optimisation_keeps_the_phase_order() {
        let mut s = Summary::default();
        s.forensics.insert("gamma_correct".into(), (0.9, 0.8, 0.1));
        s.forensics.insert("debayer".into(), (0.9, 0.3, 0.6));
        s.forensics.insert("black_level".into(), (0.9, 0.95, -0.05));
        s.forensics.insert("white_balance".into(), (0.9, 0.8, 0.1));
        let ranking = forensics_ranking(&s);
        let groups: Vec<&str> = ranking.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            groups,
            ["debayer", "gamma_correct", "white_balance", "black_level"]
        );
        let csv = forensics_csv(&ranking);
        assert_eq!(csv.lines().nth(1), Some("debayer,0.9000,0.3000,0.6000"));
        let chart = forensics_image("accuracy", &ranking);
        let y0 = MARGIN + LINE * SCALE + MARGIN;
        assert_eq!(chart.height, y0 + 4 * BAR_ROW + MARGIN);
        // debayer's row: the after bar (0.3) in its drop's colour, then the before bar's grey
        let x0 = 2 * MARGIN + text_width("white_balance", SCALE);
        let at = |x: usize| {
            let i = ((y0 + BAR_HEIGHT / 2) * chart.width + x) * 4;
            [chart.data[i], chart.data[i + 1], chart.data[i + 2]]
        };
        let after = (0.3 * BAR as f32).round() as usize;
        assert_eq!(at(x0 + after - 1), colour(0.25 + 0.75 * 0.6f32 as f64));
        assert_eq!(at(x0 + after + 1), [170, 170, 170]);
        assert_eq!(at(x0 + (0.9 * BAR as f32) as usize + 1), [238, 238, 238]);

        let mut s = Summary {
            phase_order: vec!["frozen processing".into(), "joint processing".into()],
            ..Default::default()
        };
        s.final_metric.insert("joint processing".into(), 0.75);
        s.final_metric.insert("frozen processing".into(), 0.5);
        assert_eq!(
            optimisation_csv(&s),
            "phase,final_metric\nfrozen processing,0.5000\njoint processing,0.7500\n"
        );
    }
}
