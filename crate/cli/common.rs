//! Helpers every command shares: reading inputs and writing outputs with errors that name the file,
//! and writing an output folder whole or not at all.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, Once, PoisonError};
use std::task::Poll;

use lens2logit::data::tiles::LABELS_CSV;
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

/// What may stand where a command writes its folder and be replaced whole: an empty folder, or
/// one `holds` recognises as what the command writes. Anything else is refused before any work.
pub struct Replaceable {
    /// What `holds` recognises, in words ("a run folder").
    pub what: &'static str,
    pub holds: fn(&Path) -> bool,
}

/// For outputs that cannot be told from a user's own files: only an empty folder is replaced.
pub const EMPTY: Replaceable = Replaceable {
    what: "empty",
    holds: |_| false,
};

/// A dataset folder as `fetch` and `synth` write it: tiles, labels.csv and masks/, nothing else.
pub const DATASET: Replaceable = Replaceable {
    what: "a dataset folder (tiles, labels.csv, masks/)",
    holds: |dir| {
        holds_only(dir, |path| match name_of(path) {
            "masks" => holds_only(path, |mask| name_of(mask).ends_with(".png")),
            name => {
                name == LABELS_CSV || [".tif", ".tiff", ".png"].iter().any(|e| name.ends_with(e))
            }
        })
    },
};

/// A path's file name ("" where it has none that is UTF-8).
pub fn name_of(path: &Path) -> &str {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
}

/// Whether `dir` is a folder whose every entry is `allowed`.
pub fn holds_only(dir: &Path, allowed: impl Fn(&Path) -> bool) -> bool {
    std::fs::read_dir(dir)
        .is_ok_and(|mut entries| entries.all(|entry| entry.is_ok_and(|e| allowed(&e.path()))))
}

/// Whether a command may write the folder `dir`: absent, empty, or what `replaceable` holds; for
/// commands that check before long work, as [`write_folder`] does.
pub fn may_replace(dir: &Path, replaceable: &Replaceable) -> Result<(), String> {
    if !dir.exists() {
        return Ok(());
    }
    let shown = dir.display();
    let empty = std::fs::read_dir(dir)
        .map_err(|e| format!("{shown} exists and is not a folder to write: {e}"))?
        .next()
        .is_none();
    if empty || (replaceable.holds)(dir) {
        return Ok(());
    }
    Err(format!(
        "{shown} exists and is not {}: choose another folder (nothing was written)",
        replaceable.what
    ))
}

/// Folders being written: the folder whose removal undoes one (its sibling, or the first parent
/// made for it) and its destination.
static WRITING: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());

fn writing() -> MutexGuard<'static, Vec<(PathBuf, PathBuf)>> {
    WRITING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes the folder `dir` whole or not at all (every command that writes a folder does so through
/// here): `fill` writes into a sibling, `.NAME.partial-PID`, which takes `dir`'s place once `fill`
/// succeeded. On an error, or Ctrl-C, the sibling goes (with the parent folders made for it) and
/// `dir` is as it was. An existing `dir` is replaced only as `replaceable` allows, checked before
/// `fill` starts.
pub fn write_folder<T>(
    dir: &Path,
    replaceable: &Replaceable,
    fill: impl FnOnce(&Path) -> Result<T, String>,
) -> Result<T, String> {
    may_replace(dir, replaceable)?;
    let name = dir.file_name().ok_or_else(|| {
        format!(
            "{} names no folder: give one to write, such as out",
            dir.display()
        )
    })?;
    let sibling = |what: &str| {
        dir.with_file_name(format!(
            ".{}.{what}-{}",
            name.to_string_lossy(),
            std::process::id()
        ))
    };
    let partial = sibling("partial");
    let undo = made_parents(&partial)?.unwrap_or_else(|| partial.clone());
    // a sibling left by a killed process that had this id
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir(&partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    writing().push((undo.clone(), dir.to_path_buf()));
    remove_on_ctrl_c();
    let filled = fill(&partial);
    // held until the sibling is in place or gone, so that Ctrl-C cannot come between
    let mut now_writing = writing();
    now_writing.retain(|(u, _)| *u != undo);
    let result =
        filled.and_then(|value| swap_in(&partial, dir, &sibling("replaced")).map(|()| value));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&undo);
    }
    result
}

/// Makes the missing folders above `path`; the first of them (removed again on failure).
fn made_parents(path: &Path) -> Result<Option<PathBuf>, String> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(None);
    };
    let first = parent
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .last()
        .map(Path::to_path_buf);
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    Ok(first)
}

/// Puts the finished `partial` in `dir`'s place; a folder there before is moved aside to `old`
/// first and removed only once the new one stands (moved back if it cannot).
fn swap_in(partial: &Path, dir: &Path, old: &Path) -> Result<(), String> {
    let shown = dir.display();
    let existed = dir.exists();
    if existed {
        std::fs::rename(dir, old).map_err(|e| format!("cannot replace {shown}: {e}"))?;
    }
    if let Err(e) = std::fs::rename(partial, dir) {
        if existed {
            let _ = std::fs::rename(old, dir);
        }
        return Err(format!("cannot move the new folder into {shown}: {e}"));
    }
    if existed {
        if let Err(e) = std::fs::remove_dir_all(old) {
            eprintln!(
                "warning: wrote {shown}, but the folder it replaced stays in {}: {e}",
                old.display()
            );
        }
    }
    Ok(())
}

/// On Ctrl-C the folders being written are removed before the command stops (with exit code 130,
/// as the shell's own stop): a stopped command leaves its destination as it was.
fn remove_on_ctrl_c() {
    static LISTENING: Once = Once::new();
    LISTENING.call_once(|| {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        let mut heard = Box::pin(tokio::signal::ctrl_c());
        // polled once here, which installs the handler: a Ctrl-C from now on is heard
        let listening = runtime.block_on(std::future::poll_fn(|cx| {
            Poll::Ready(heard.as_mut().poll(cx).is_pending())
        }));
        if !listening {
            return;
        }
        std::thread::spawn(move || {
            if runtime.block_on(heard).is_err() {
                return;
            }
            let now_writing = writing();
            for (undo, _) in now_writing.iter() {
                // the command's threads may still add files while it is removed
                for _ in 0..100 {
                    if std::fs::remove_dir_all(undo).is_ok() || !undo.exists() {
                        break;
                    }
                }
            }
            if let Some((_, dir)) = now_writing.first() {
                eprintln!("\nstopped: {} is as it was", dir.display());
            }
            std::process::exit(130);
        });
    });
}
