//! Fetching one of the paper's datasets from Zenodo: list the record, read its label and mask
//! files and its archives (and the archives inside them), and hand over tiles (with labels or
//! masks) as they are decided. The CLI writes them to disk, the page's worker decodes and shows
//! them; both share this code.
//!
//! A limited fetch draws a seeded sample ([`super::sample`]), balanced by class for
//! classification. By random access only the sample's entries are read; a stream reads on to the
//! end (its MD5 covers the whole file) and hands out a tile as soon as it is known to be in the
//! sample, holding the others it cannot decide yet (tiles before the labels, drone tiles before
//! their masks) until it can.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;

use super::archive::{
    limit_text, read_archive, skipped, ArchiveEvent, Outcome, MAX_ENTRY_BYTES, MAX_NESTING,
};
use super::cancel::CancelToken;
use super::census::Census;
use super::discovery::{classify, parse_labels, DatasetKind, Entry, Rule};
use super::drone_balance::{classification_tiles, DroneBalance, BALANCE_SEED};
use super::http::body_within;
use super::ranged::{Http, RangeSource, RangedArchive};
use super::sample;
use super::zenodo::{Opened, RemoteFile, ZenodoClient};
use super::Task;
use crate::codecs::hex;
use crate::raw::cut::{
    car_share, classification_label, cut_tiles, keep_car_tiles, CutTile, CLASSES,
};
use crate::raw::{decode_dng, decode_mask};
use crate::{Error, Result};

/// What to fetch.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub dataset: DatasetKind,
    /// Raw-Microscopy classifies leukocytes; Raw-Drone segments cars or, as the paper also
    /// does, classifies tiles as car or no car from their masks.
    pub task: Task,
    /// Intensity level in percent (1, 5, 10, 25, 50, 75, 100).
    pub intensity: u32,
    /// Take a sample of this many tiles.
    pub limit: Option<usize>,
    /// Seeds the sample.
    pub seed: u64,
    /// Read only the entries needed, by byte ranges, where the server allows it; otherwise (or
    /// when false) every archive is read whole as a stream, which also checks its MD5.
    pub random_access: bool,
    /// Raw-Drone classification: which of a full image's classified tiles are kept (the paper's
    /// balanced set by default).
    pub drone_balance: DroneBalance,
}

impl FetchRequest {
    /// The whole dataset at full intensity for the paper's task, by random access.
    pub fn new(dataset: DatasetKind) -> Self {
        Self {
            dataset,
            task: match dataset {
                DatasetKind::Microscopy => Task::Classification,
                DatasetKind::Drone => Task::Segmentation,
            },
            intensity: crate::spec::limits::FULL_INTENSITY,
            limit: None,
            seed: 0,
            random_access: true,
            drone_balance: DroneBalance::default(),
        }
    }

    /// Raw-Drone classified: labels come from masks, so tiles wait for theirs.
    pub fn drone_classes(&self) -> bool {
        self.dataset == DatasetKind::Drone && self.task == Task::Classification
    }

    /// What is fetched, in words (the dataset's label): dataset, task, intensity and, for drone
    /// classification, the rule that kept its tiles.
    pub fn describe(&self) -> String {
        let rule = if self.drone_classes() {
            format!(", {}", self.drone_balance.describe())
        } else {
            String::new()
        };
        format!(
            "{} {} at {} %{rule}",
            self.dataset.name(),
            self.task.name(),
            self.intensity
        )
    }
}

/// What fetching produces, in order of arrival.
#[derive(Debug)]
pub enum FetchEvent {
    /// The record's files.
    Listing(Vec<RemoteFile>),
    /// A file of the record starts to be read: streamed whole, or by random access.
    Archive {
        key: String,
        size: u64,
        random_access: bool,
    },
    /// A raw tile file (PNG/TIFF bytes as in the archive, or a float32 TIFF cut from a full
    /// image), with its class when already known.
    Tile {
        file: String,
        stem: String,
        bytes: Vec<u8>,
        label: Option<String>,
    },
    /// Raw-Microscopy labels (file name -> class), once read.
    Labels(HashMap<String, String>),
    /// A Raw-Drone car mask (PNG bytes).
    Mask {
        stem: String,
        bytes: Vec<u8>,
    },
    /// A file of the paper's own processed views: `view` names the processing, `stem` the tile.
    ProcessedView {
        view: String,
        stem: String,
        bytes: Vec<u8>,
    },
    Progress {
        key: String,
        read: u64,
        total: Option<u64>,
    },
    /// What discovery made of a file of the record, one line per group of entries.
    Layout {
        key: String,
        lines: Vec<String>,
    },
    /// How the sample was drawn.
    Sample(String),
    /// An archive's MD5 did not match: everything it delivered must be discarded.
    Discard {
        key: String,
        reason: String,
    },
    /// Everything a file delivered is checked: read whole with its MD5 matching (or none
    /// stated), or read by random access with each entry's CRC32 matching.
    Verified {
        key: String,
    },
    Warning(String),
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FetchSummary {
    /// Tiles delivered and not discarded.
    pub tiles: usize,
    /// Files of the record read.
    pub archives: usize,
}

/// A tile that cannot be handed out yet.
struct Held {
    file: String,
    stem: String,
    bytes: Vec<u8>,
    archive: String,
    class: Option<String>,
}

/// A full image waiting for the end (its tiles are numbered by its place among all of them).
struct FullImage {
    stem: String,
    file: String,
    bytes: Vec<u8>,
    archive: String,
}

/// A fetch's state between the events of its files.
struct Gather<'a> {
    request: &'a FetchRequest,
    on: &'a mut dyn FnMut(FetchEvent) -> Result<()>,
    label_texts: Vec<String>,
    labels: Option<HashMap<String, String>>,
    /// Tile files the random-access reader knows are present (the sample is drawn among them).
    present: HashSet<String>,
    /// The sample's files, once it can be drawn.
    plan: Option<HashSet<String>>,
    held: Vec<Held>,
    /// Tiles whose dataset only the labels can decide.
    undecided: Vec<Held>,
    /// Tile masks by stem (Raw-Drone classification labels tiles by them).
    masks: HashMap<String, Vec<u8>>,
    full_masks: HashMap<String, Vec<u8>>,
    full_images: Vec<FullImage>,
    /// Tiles handed out, by the file of the record they came from.
    delivered: HashMap<String, usize>,
    by_labels: usize,
    /// Stems of the tiles random access has read so far (their masks may be in another archive).
    tile_stems: HashSet<String>,
    /// What was skipped, each named with its reason (the final error lists them when no tile
    /// came through).
    skipped: Vec<String>,
}

impl<'a> Gather<'a> {
    fn new(request: &'a FetchRequest, on: &'a mut dyn FnMut(FetchEvent) -> Result<()>) -> Self {
        Self {
            request,
            on,
            label_texts: Vec::new(),
            labels: None,
            present: HashSet::new(),
            plan: None,
            held: Vec::new(),
            undecided: Vec::new(),
            masks: HashMap::new(),
            full_masks: HashMap::new(),
            full_images: Vec::new(),
            delivered: HashMap::new(),
            by_labels: 0,
            tile_stems: HashSet::new(),
            skipped: Vec::new(),
        }
    }

    /// Something skipped (an entry, a file of the record), named with its reason.
    fn skip(&mut self, what: String) -> Result<()> {
        self.skipped.push(what.clone());
        (self.on)(FetchEvent::Warning(what))
    }

    fn tiles(&self) -> usize {
        self.delivered.values().sum()
    }

    fn emit(&mut self, tile: Held) -> Result<()> {
        *self.delivered.entry(tile.archive).or_default() += 1;
        let label = tile
            .class
            .or_else(|| self.labels.as_ref()?.get(&tile.file).cloned());
        (self.on)(FetchEvent::Tile {
            file: tile.file,
            stem: tile.stem,
            bytes: tile.bytes,
            label,
        })
    }

    fn wants(&self, entry: &Entry) -> bool {
        wants(self.request, entry)
    }

    /// One entry of the record (a file, or an archive's entry), its bytes checked.
    fn entry(&mut self, archive: &str, entry: Entry, bytes: Vec<u8>) -> Result<()> {
        if !self.wants(&entry) {
            return Ok(());
        }
        match entry {
            Entry::Tile {
                dataset,
                file,
                stem,
                ..
            } => {
                let tile = Held {
                    file,
                    stem,
                    bytes,
                    archive: archive.to_string(),
                    class: None,
                };
                match (dataset, &self.labels) {
                    (Some(_), _) => self.candidate(tile),
                    (None, Some(labels)) if labels.contains_key(&tile.file) => {
                        self.by_labels += 1;
                        self.candidate(tile)
                    }
                    (None, Some(_)) => Ok(()),
                    (None, None) => {
                        self.undecided.push(tile);
                        Ok(())
                    }
                }
            }
            Entry::FullImage { file, stem, .. } => {
                self.full_images.push(FullImage {
                    stem,
                    file,
                    bytes,
                    archive: archive.to_string(),
                });
                Ok(())
            }
            Entry::Labels => {
                self.label_texts
                    .push(String::from_utf8_lossy(&bytes).into_owned());
                let labels = parse_labels(&self.label_texts);
                (self.on)(FetchEvent::Labels(labels.clone()))?;
                self.labels = Some(labels);
                self.draw_from_labels()?;
                for tile in std::mem::take(&mut self.undecided) {
                    if self
                        .labels
                        .as_ref()
                        .is_some_and(|l| l.contains_key(&tile.file))
                    {
                        self.by_labels += 1;
                        self.candidate(tile)?;
                    }
                }
                Ok(())
            }
            Entry::Mask { stem, full: true } => {
                self.full_masks.insert(stem, bytes);
                Ok(())
            }
            Entry::Mask { stem, full: false } => {
                if self.request.drone_classes() {
                    self.masks.insert(stem.clone(), bytes.clone());
                }
                (self.on)(FetchEvent::Mask { stem, bytes })
            }
            Entry::ProcessedView { view, stem, .. } => {
                (self.on)(FetchEvent::ProcessedView { view, stem, bytes })
            }
            Entry::Archive | Entry::LooseTile { .. } => Ok(()),
        }
    }

    /// A tile of the dataset asked for: handed out now, dropped, or held until it can be decided.
    fn candidate(&mut self, tile: Held) -> Result<()> {
        let request = self.request;
        if request.drone_classes() {
            self.held.push(tile);
            return Ok(());
        }
        match (request.limit, request.task, &self.plan) {
            (None, _, _) => self.emit(tile),
            (Some(_), Task::Classification, Some(plan)) => {
                if plan.contains(&tile.file) {
                    self.emit(tile)?;
                }
                Ok(())
            }
            (Some(limit), Task::Segmentation, _) => {
                // the `limit` first in the seeded order so far: the sample whatever comes after
                self.held.push(tile);
                if self.held.len() > 2 * limit {
                    self.keep_first(limit);
                }
                Ok(())
            }
            (Some(_), Task::Classification, None) => {
                self.held.push(tile);
                Ok(())
            }
        }
    }

    fn keep_first(&mut self, limit: usize) {
        sample::sort_seeded(self.request.seed, &mut self.held, |t| t.file.clone());
        self.held.truncate(limit);
    }

    /// A Raw-Drone tile's class from its mask, when it has one and the paper gives it a class.
    fn drone_class(&self, stem: &str) -> Option<String> {
        let mask = decode_mask(self.masks.get(stem)?, stem).ok()?;
        Some(CLASSES[classification_label(car_share(&mask))?].to_string())
    }

    /// Raw-Microscopy with a limit: the sample, once the labels say the classes, among the tiles
    /// known to be present (by random access) or all the labelled ones (a stream).
    fn draw_from_labels(&mut self) -> Result<()> {
        let (Some(limit), Some(labels)) = (self.request.limit, &self.labels) else {
            return Ok(());
        };
        if self.request.task != Task::Classification || self.tiles() > 0 {
            return Ok(());
        }
        let mut labelled: Vec<(String, String)> = labels
            .iter()
            .filter(|(file, _)| self.present.is_empty() || self.present.contains(*file))
            .map(|(f, c)| (f.clone(), c.clone()))
            .collect();
        labelled.sort();
        let (plan, how) =
            sample::balanced_described(self.request.seed, &labelled, limit, "labelled tiles");
        (self.on)(FetchEvent::Sample(how))?;
        self.plan = Some(plan);
        for tile in std::mem::take(&mut self.held) {
            self.candidate(tile)?;
        }
        Ok(())
    }

    /// A file of the record failed: what it delivered is taken back.
    fn discard(&mut self, key: &str) -> usize {
        let in_key = |archive: &str| archive == key || archive.starts_with(&format!("{key}/"));
        self.held.retain(|t| !in_key(&t.archive));
        self.undecided.retain(|t| !in_key(&t.archive));
        self.full_images.retain(|t| !in_key(&t.archive));
        self.delivered.remove(key).unwrap_or(0)
    }

    /// After the last file: full images cut, drone tiles labelled by their masks, and what is
    /// still held drawn from.
    fn finish(&mut self) -> Result<()> {
        self.cut_full_images()?;
        let request = self.request;
        if !self.undecided.is_empty() {
            (self.on)(FetchEvent::Warning(format!(
                "{} tiles could not be told to be {}'s: no folder, archive name or extension \
                 says which dataset they are, and no labels list them",
                self.undecided.len(),
                request.dataset.name()
            )))?;
        }
        if request.drone_classes() {
            let mut held = std::mem::take(&mut self.held);
            for tile in &mut held {
                tile.class = self.drone_class(&tile.stem);
            }
            let before = held.len();
            held.retain(|t| t.class.is_some());
            let unlabelled = before - held.len();
            self.held = held;
            if unlabelled > 0 {
                (self.on)(FetchEvent::Sample(format!(
                    "{unlabelled} drone tiles were left out: no mask, or a car share between 0 \
                     and the paper's threshold of 1%"
                )))?;
            }
        }
        let mut held = std::mem::take(&mut self.held);
        held.sort_by(|a, b| a.file.cmp(&b.file));
        let Some(limit) = request.limit else {
            return held.into_iter().try_for_each(|t| self.emit(t));
        };
        let classes: Vec<(String, String)> = held
            .iter()
            .filter_map(|t| Some((t.file.clone(), t.class.clone()?)))
            .collect();
        let (chosen, how): (HashSet<String>, String) = if !classes.is_empty() {
            sample::balanced_described(request.seed, &classes, limit, "tiles")
        } else {
            let chosen = sample::uniform(request.seed, held.iter().map(|t| t.file.as_str()), limit);
            let how = match (request.task, held.is_empty()) {
                (_, true) => String::new(),
                (Task::Segmentation, _) => format!(
                    "a seeded sample (seed {}) of {} tiles",
                    request.seed,
                    chosen.len()
                ),
                (Task::Classification, _) => format!(
                    "no labels were found: a seeded sample (seed {}) of {} tiles without classes",
                    request.seed,
                    chosen.len()
                ),
            };
            (chosen.into_iter().map(String::from).collect(), how)
        };
        if !how.is_empty() {
            (self.on)(FetchEvent::Sample(how))?;
        }
        held.into_iter()
            .filter(|t| chosen.contains(&t.file))
            .try_for_each(|t| self.emit(t))
    }

    /// The full images, numbered in the order of their names, cut into 256 px tiles as the
    /// paper's code does: for segmentation the tiles with a car; for classification, where the
    /// image has a mask, the tiles the request's [`DroneBalance`] keeps (labelled by their masks
    /// later), which the report says.
    fn cut_full_images(&mut self) -> Result<()> {
        let mut images = std::mem::take(&mut self.full_images);
        images.sort_by(|a, b| a.file.cmp(&b.file));
        // classification: masked images, their tiles, those with a class, those kept per class
        let (mut masked, mut cut, mut classed, mut kept) = (0, 0, 0, [0, 0]);
        for (index, image) in images.into_iter().enumerate() {
            let mask = match self.full_masks.get(&image.stem) {
                Some(png) => Some(decode_mask(png, &image.stem)?),
                None => None,
            };
            let dng = decode_dng(&image.bytes, &image.file)?;
            let mut tiles = cut_tiles(&dng.mosaic, mask.as_deref(), index, TILE)?;
            let class = |t: &CutTile| t.car_share.and_then(classification_label);
            match self.request.task {
                Task::Segmentation => tiles = keep_car_tiles(tiles, index),
                Task::Classification if mask.is_some() => {
                    masked += 1;
                    cut += tiles.len();
                    classed += tiles.iter().filter(|t| class(t).is_some()).count();
                    tiles = classification_tiles(tiles, index, self.request.drone_balance);
                    for label in tiles.iter().filter_map(class) {
                        kept[label] += 1;
                    }
                }
                Task::Classification => {}
            }
            if mask.is_none() {
                (self.on)(FetchEvent::Warning(format!(
                    "{} has no mask (looked for one named {} in a masks folder): its tiles have \
                     no cars to learn",
                    image.file, image.stem
                )))?;
            }
            for tile in tiles {
                let (w, h) = (tile.raw.width(), tile.raw.height());
                if let Some(mask) = &tile.mask {
                    let pixels: Vec<u8> = mask.iter().map(|&m| m * 255).collect();
                    let png = crate::codecs::png8(w, h, 1, &pixels)?;
                    if self.request.drone_classes() {
                        self.masks.insert(tile.name.clone(), png.clone());
                    }
                    (self.on)(FetchEvent::Mask {
                        stem: tile.name.clone(),
                        bytes: png,
                    })?;
                }
                let held = Held {
                    file: format!("{}.tif", tile.name),
                    bytes: crate::codecs::tiff_f32(w, h, tile.raw.data())?,
                    stem: tile.name,
                    archive: image.archive.clone(),
                    class: None,
                };
                self.candidate(held)?;
            }
        }
        if masked > 0 {
            let balance = self.request.drone_balance;
            let drawn = match balance {
                DroneBalance::Balanced => format!(
                    ", min(car, no car) of each per image drawn in the lab's seeded order (seed \
                     {BALANCE_SEED})"
                ),
                DroneBalance::All => String::new(),
            };
            (self.on)(FetchEvent::Sample(format!(
                "drone classification tiles {}: {} of the {cut} tiles cut from {masked} full \
                 images ({} {}, {} {}{drawn}; {} with a car share between 0 and 1% left out)",
                balance.describe(),
                kept[0] + kept[1],
                kept[0],
                CLASSES[0],
                kept[1],
                CLASSES[1],
                cut - classed,
            )))?;
        }
        Ok(())
    }
}

/// Whether an entry is something `request` reads.
fn wants(request: &FetchRequest, entry: &Entry) -> bool {
    match entry {
        Entry::Tile {
            dataset, intensity, ..
        } => {
            *intensity == request.intensity
                && match dataset {
                    Some(d) => *d == request.dataset,
                    None => request.dataset == DatasetKind::Microscopy,
                }
        }
        Entry::FullImage { intensity, .. } => {
            request.dataset == DatasetKind::Drone && *intensity == request.intensity
        }
        Entry::Labels => request.dataset == DatasetKind::Microscopy,
        Entry::Mask { .. } => request.dataset == DatasetKind::Drone,
        Entry::ProcessedView { dataset, .. } => dataset.is_none_or(|d| d == request.dataset),
        Entry::Archive => true,
        Entry::LooseTile { .. } => false,
    }
}

/// A tile entry's file and stem.
fn tile_names(entry: &Entry) -> Option<(&str, &str)> {
    match entry {
        Entry::Tile { file, stem, .. } => Some((file, stem)),
        _ => None,
    }
}

/// The side of the tiles cut from full images, as in the datasets.
const TILE: usize = 256;

/// Reads `entries` of `archive` into `gather`, counting them in `outcome`.
async fn read_into<S: RangeSource>(
    archive: &mut RangedArchive<S>,
    entries: Vec<(usize, Entry)>,
    key: &str,
    gather: &mut Gather<'_>,
    cancel: &CancelToken,
    outcome: &mut Outcome,
) -> Result<()> {
    let done = archive
        .read(entries, cancel, &mut |event| match event {
            ArchiveEvent::Entry { entry, bytes, .. } => gather.entry(key, entry, bytes),
            ArchiveEvent::Progress { read, total } => (gather.on)(FetchEvent::Progress {
                key: key.to_string(),
                read,
                total,
            }),
            ArchiveEvent::Warning(w) => gather.skip(w),
        })
        .await?;
    outcome.entries += done.entries;
    outcome.corrupt += done.corrupt;
    Ok(())
}

/// Everything an archive read by random access needs for `gather`: the labels first (so the
/// sample can be drawn), Raw-Drone's masks next where they label the tiles, then the sample's
/// tiles with their masks and the paper's processed views; archives inside it are read in turn.
async fn read_needed<S: RangeSource>(
    mut archive: RangedArchive<S>,
    context: &str,
    gather: &mut Gather<'_>,
    cancel: &CancelToken,
    census: &mut Census,
    depth: usize,
) -> Result<Outcome> {
    let mut wanted: Vec<(usize, Entry)> = Vec::new();
    for (i, path) in archive.paths().iter().enumerate() {
        let full = format!("{context}/{path}");
        let entry = census.classify(&full);
        if let Some(entry) = entry.filter(|e| gather.wants(e)) {
            wanted.push((i, entry));
        }
    }
    let request = gather.request;
    // what an entry delivers is its record file's, whatever archive inside it held it
    let key = context.split('/').next().unwrap_or(context);
    let mut outcome = Outcome::default();
    let take = |wanted: &mut Vec<(usize, Entry)>, what: &dyn Fn(&Entry) -> bool| {
        let (taken, rest): (Vec<_>, Vec<_>) = std::mem::take(wanted)
            .into_iter()
            .partition(|(_, e)| what(e));
        *wanted = rest;
        taken
    };
    // what decides the sample comes first
    let labels = take(&mut wanted, &|e| matches!(e, Entry::Labels));
    let present: Vec<String> = wanted
        .iter()
        .filter_map(|(_, e)| Some(tile_names(e)?.0.to_string()))
        .collect();
    gather.present.extend(present);
    read_into(&mut archive, labels, key, gather, cancel, &mut outcome).await?;
    if gather.labels.is_some() && gather.plan.is_none() {
        gather.draw_from_labels()?;
    }
    if request.drone_classes() {
        let masks = take(&mut wanted, &|e| {
            matches!(e, Entry::Mask { full: false, .. })
        });
        read_into(&mut archive, masks, key, gather, cancel, &mut outcome).await?;
    }
    // archives inside, in turn
    let nested = take(&mut wanted, &|e| matches!(e, Entry::Archive));
    for (index, _) in nested {
        let inner_context = format!("{context}/{}", archive.paths()[index]);
        if depth >= MAX_NESTING {
            gather.skip(skipped(
                context,
                &archive.paths()[index],
                &format!("it is an archive nested deeper than {MAX_NESTING} levels"),
            ))?;
            continue;
        }
        let Some(bytes) = nested_bytes(&mut archive, index, gather, cancel).await? else {
            continue;
        };
        let inner =
            RangedArchive::open(&bytes[..], &inner_context, bytes.len() as u64, cancel).await?;
        let found = Box::pin(read_needed(
            inner,
            &inner_context,
            gather,
            cancel,
            census,
            depth + 1,
        ))
        .await?;
        outcome.entries += found.entries;
        outcome.corrupt += found.corrupt;
    }
    let tiles = take(&mut wanted, &|e| matches!(e, Entry::Tile { .. }));
    let rest = with_masks_and_views(gather, sampled(gather, tiles), wanted);
    read_into(&mut archive, rest, key, gather, cancel, &mut outcome).await?;
    Ok(outcome)
}

/// The bytes of the archive at `index` inside `archive`, read whole into memory (it is an entry,
/// within the entry limit) to be read by random access in turn; `None` where it could not be read
/// (the warnings say why).
async fn nested_bytes<S: RangeSource>(
    archive: &mut RangedArchive<S>,
    index: usize,
    gather: &mut Gather<'_>,
    cancel: &CancelToken,
) -> Result<Option<Vec<u8>>> {
    let mut bytes = None;
    let mut warnings = Vec::new();
    archive
        .read(vec![(index, Entry::Archive)], cancel, &mut |event| {
            match event {
                ArchiveEvent::Entry { bytes: b, .. } => bytes = Some(b),
                ArchiveEvent::Warning(w) => warnings.push(w),
                ArchiveEvent::Progress { .. } => {}
            }
            Ok(())
        })
        .await?;
    for w in warnings {
        gather.skip(format!(
            "{w} (by random access an archive inside an archive is read whole: fetch with \
             --stream to read it as it streams)"
        ))?;
    }
    Ok(bytes)
}

/// The sample's tiles, where it can be drawn now (else all, drawn from at the end).
fn sampled(gather: &Gather<'_>, tiles: Vec<(usize, Entry)>) -> Vec<(usize, Entry)> {
    let request = gather.request;
    let files = || tiles.iter().filter_map(|(_, e)| tile_names(e));
    let chosen: Option<HashSet<String>> = match request.limit {
        None => None,
        Some(_) if gather.plan.is_some() => gather.plan.clone(),
        Some(limit) if request.drone_classes() => {
            let labelled: Vec<(String, String)> = files()
                .filter_map(|(file, stem)| Some((file.to_string(), gather.drone_class(stem)?)))
                .collect();
            let chosen = sample::balanced(request.seed, &labelled, limit);
            Some(chosen.into_iter().map(String::from).collect())
        }
        Some(limit) if request.task == Task::Segmentation => {
            let chosen = sample::uniform(request.seed, files().map(|(file, _)| file), limit);
            Some(chosen.into_iter().map(String::from).collect())
        }
        Some(_) => None,
    };
    tiles
        .into_iter()
        .filter(|(_, e)| {
            chosen
                .as_ref()
                .is_none_or(|c| tile_names(e).is_some_and(|(file, _)| c.contains(file)))
        })
        .collect()
}

/// The tiles to read and, of the `others` wanted, the masks and the paper's views of the tiles
/// read (here, or in an archive read before, such as a zip of tiles beside a zip of masks),
/// nothing of the other tiles'.
fn with_masks_and_views(
    gather: &mut Gather<'_>,
    tiles: Vec<(usize, Entry)>,
    others: Vec<(usize, Entry)>,
) -> Vec<(usize, Entry)> {
    let stems: HashSet<String> = tiles
        .iter()
        .filter_map(|(_, e)| Some(tile_names(e)?.1.to_string()))
        .collect();
    let read_before = std::mem::take(&mut gather.tile_stems);
    let others: Vec<_> = others
        .into_iter()
        .filter(|(_, e)| match e {
            Entry::Mask { stem, full: false } | Entry::ProcessedView { stem, .. } => {
                stems.contains(stem)
                    || (stems.is_empty() && (read_before.is_empty() || read_before.contains(stem)))
            }
            _ => true,
        })
        .collect();
    gather.tile_stems = read_before.into_iter().chain(stems).collect();
    tiles.into_iter().chain(others).collect()
}

/// A record file that is no archive, read whole (a labels file, a mask, a DNG): `Ok(false)` when
/// its MD5 does not match the record's.
async fn read_file(
    client: &ZenodoClient,
    file: &RemoteFile,
    entry: Entry,
    gather: &mut Gather<'_>,
    cancel: &CancelToken,
) -> Result<bool> {
    if file.size > MAX_ENTRY_BYTES {
        gather.skip(format!(
            "{} skipped: it is larger than {}",
            file.key,
            limit_text()
        ))?;
        return Ok(true);
    }
    let response = client.get(&file.content_url, None, cancel).await?;
    let bytes = body_within(response, MAX_ENTRY_BYTES, &file.content_url, cancel).await?;
    if let Some(expected) = &file.md5 {
        use md5::{Digest, Md5};
        if hex(&Md5::digest(&bytes)) != *expected {
            return Ok(false);
        }
    }
    gather.entry(&file.key, entry, bytes)?;
    Ok(true)
}

/// The record's files in reading order: those that are no archive first (labels and masks decide
/// the sample), then the archives.
fn reading_order(files: &[RemoteFile]) -> Vec<(&RemoteFile, Entry)> {
    let mut order: Vec<(&RemoteFile, Entry)> = files
        .iter()
        .filter_map(|f| Some((f, classify(&f.key)?)))
        .collect();
    order.sort_by_key(|(_, e)| matches!(e, Entry::Archive));
    order
}

/// Streams the record's files and reports through `on`. Labels and masks are looked for until
/// the archives end even after `limit` tiles, so the tiles that came are usable. A damaged or
/// broken file is discarded (with a `Discard` event) and the next one read, a damaged or too
/// large entry skipped (with a `Warning` naming it); fetching fails when no tile came through
/// and something was discarded or skipped, saying what.
pub async fn fetch(
    client: &ZenodoClient,
    request: &FetchRequest,
    cancel: &CancelToken,
    on: &mut dyn FnMut(FetchEvent) -> Result<()>,
) -> Result<FetchSummary> {
    if let Some(limit) = request.limit {
        crate::spec::limits::FETCH_TILES.check_usize(limit)?;
    }
    let files = client.list_files(cancel).await?;
    on(FetchEvent::Listing(files.clone()))?;
    let order = reading_order(&files);
    if !order.iter().any(|(_, e)| {
        matches!(
            e,
            Entry::Archive | Entry::Tile { .. } | Entry::FullImage { .. }
        )
    }) {
        return Err(Error::invalid(format!(
            "record {} holds no archives or images to read tiles from (its files: {})",
            client.record(),
            files
                .iter()
                .map(|f| f.key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut gather = Gather::new(request, on);
    let mut summary = FetchSummary::default();
    let mut failures: Vec<String> = Vec::new();
    for (file, entry) in order {
        if !gather.wants(&entry) {
            continue;
        }
        let mut census = Census::default();
        let result = if matches!(entry, Entry::Archive) {
            read_record_archive(client, file, &mut gather, cancel, &mut census).await
        } else {
            census.add(&file.key, Some(&entry));
            (gather.on)(FetchEvent::Archive {
                key: file.key.clone(),
                size: file.size,
                random_access: false,
            })?;
            read_file(client, file, entry, &mut gather, cancel)
                .await
                .map(|ok| Outcome {
                    entries: 1,
                    corrupt: 0,
                    md5_ok: Some(ok),
                })
        };
        summary.archives += 1;
        if !census.is_empty() {
            (gather.on)(FetchEvent::Layout {
                key: file.key.clone(),
                lines: census.lines(),
            })?;
        }
        // a file whose end or checksum failed cannot be trusted: its tiles go, other files may
        // still hold the dataset
        let failure = match result {
            Err(Error::Cancelled) => return Err(Error::Cancelled),
            Err(e) => Some(format!("{e}; what {} delivered was discarded", file.key)),
            Ok(outcome) if outcome.md5_ok == Some(false) => Some(format!(
                "{}'s MD5 does not match the record's: what it delivered was discarded (the file \
                 was damaged on the way; try again)",
                file.key
            )),
            Ok(_) => None,
        };
        match failure {
            Some(reason) => {
                let dropped = gather.discard(&file.key);
                let reason = format!("{reason} ({dropped} tiles)");
                (gather.on)(FetchEvent::Discard {
                    key: file.key.clone(),
                    reason: reason.clone(),
                })?;
                failures.push(reason);
            }
            None => (gather.on)(FetchEvent::Verified {
                key: file.key.clone(),
            })?,
        }
    }
    gather.finish()?;
    summary.tiles = gather.tiles();
    if gather.by_labels > 0 {
        (gather.on)(FetchEvent::Sample(format!(
            "{} tiles were told to be microscopy's by {}",
            gather.by_labels,
            Rule::Labels.describe()
        )))?;
    }
    if summary.tiles == 0 && !(failures.is_empty() && gather.skipped.is_empty()) {
        return Err(nothing_came(client, request, &failures, &gather.skipped));
    }
    Ok(summary)
}

/// Most skipped entries a final error names (the warnings named each as it was skipped).
const NAMED_IN_ERROR: usize = 10;

/// Why a fetch gave no tiles: the record files that failed (the first of them) and the entries
/// skipped, one per line.
fn nothing_came(
    client: &ZenodoClient,
    request: &FetchRequest,
    failures: &[String],
    skipped: &[String],
) -> Error {
    let mut why = format!(
        "no {} tiles at intensity {} came through from record {}",
        request.dataset.name(),
        request.intensity,
        client.record()
    );
    let reasons = failures
        .iter()
        .take(1)
        .chain(skipped.iter().take(NAMED_IN_ERROR));
    for reason in reasons {
        why.push_str(&format!("\n  {reason}"));
    }
    if skipped.len() > NAMED_IN_ERROR {
        why.push_str(&format!(
            "\n  and {} more skipped (named above)",
            skipped.len() - NAMED_IN_ERROR
        ));
    }
    match failures.is_empty() {
        true => Error::invalid(why),
        false => Error::Network(why),
    }
}

/// One zip archive of the record, streamed or by random access.
async fn read_record_archive(
    client: &ZenodoClient,
    file: &RemoteFile,
    gather: &mut Gather<'_>,
    cancel: &CancelToken,
    census: &mut Census,
) -> Result<Outcome> {
    let opened = client
        .open(file, gather.request.random_access, cancel)
        .await?;
    (gather.on)(FetchEvent::Archive {
        key: file.key.clone(),
        size: file.size,
        random_access: matches!(opened, Opened::Ranged { .. }),
    })?;
    match opened {
        Opened::Stream(response) => {
            let total = response
                .content_length()
                .or(Some(file.size).filter(|&s| s > 0));
            let census_cell = std::cell::RefCell::new(std::mem::take(census));
            let request = gather.request;
            let classify_here = |path: &str| {
                let full = format!("{}/{path}", file.key);
                let entry = census_cell.borrow_mut().classify(&full);
                entry.filter(|e| wants(request, e))
            };
            let result = read_archive(
                &file.key,
                response.bytes_stream().boxed_local(),
                total,
                file.md5.as_deref(),
                cancel,
                &classify_here,
                &mut |event| match event {
                    ArchiveEvent::Entry { entry, bytes, .. } => {
                        gather.entry(&file.key, entry, bytes)
                    }
                    ArchiveEvent::Progress { read, total } => (gather.on)(FetchEvent::Progress {
                        key: file.key.clone(),
                        read,
                        total,
                    }),
                    ArchiveEvent::Warning(w) => gather.skip(w),
                },
            )
            .await;
            *census = census_cell.into_inner();
            result
        }
        Opened::Ranged { url, size } => {
            let source = Http { client, url };
            let archive = RangedArchive::open(source, &file.key, size, cancel).await?;
            read_needed(archive, &file.key, gather, cancel, census, 0).await
        }
    }
}
