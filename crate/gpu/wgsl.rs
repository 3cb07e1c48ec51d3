//! What the WGSL programs share with the Rust that drives them, declared once in Rust: each
//! uniform struct ([`uniform!`]) and each constant ([`constants!`]) is emitted as WGSL into the
//! preamble of its program ([`Source`]), followed by the hand-written kernels, which declare none
//! of them.

/// Threads per workgroup of every full-width kernel (WebGPU's default maximum).
pub const WORKGROUP: u32 = 256;

/// The WGSL types a uniform's fields may take: the 4-byte scalars, so `#[repr(C)]` and WGSL's
/// uniform layout place every field at the same offset.
pub trait Scalar {}
impl Scalar for u32 {}
impl Scalar for f32 {}

/// Compiles only for [`Scalar`] field types (called in [`uniform!`]'s checks).
pub const fn scalar<T: Scalar>() {}

/// A uniform struct declared once: the Rust value a buffer is filled from and its WGSL text.
pub trait Uniform: bytemuck::Pod {
    /// `struct Name { field: type, ... }`, field for field as in Rust.
    const WGSL: &'static str;
}

/// Declares a uniform struct of u32 and f32 fields: `#[repr(C)]`, `bytemuck::Pod`, and its WGSL
/// declaration as [`Uniform::WGSL`]. Its size must be a multiple of 16 bytes (uniform buffers'
/// rule): pad with fields named `_pad0`, `_pad1`, ... on both sides.
macro_rules! uniform {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field:ident: $ty:ident,)*
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name {
            $($(#[$field_meta])* $field: $ty,)*
        }

        impl $crate::gpu::wgsl::Uniform for $name {
            const WGSL: &'static str = concat!(
                "struct ", stringify!($name), " {\n",
                $("    ", stringify!($field), ": ", stringify!($ty), ",\n",)*
                "}\n"
            );
        }

        const _: () = {
            $($crate::gpu::wgsl::scalar::<$ty>();)*
            assert!(
                std::mem::size_of::<$name>() % 16 == 0,
                concat!("the uniform ", stringify!($name), " needs padding to 16 bytes")
            );
        };
    };
}
pub(crate) use uniform;

/// A Rust constant as a WGSL `const` declaration of the same name.
pub trait Constant {
    fn declare(&self, name: &str) -> String;
}

impl Constant for u32 {
    fn declare(&self, name: &str) -> String {
        format!("const {name}: u32 = {self}u;\n")
    }
}

/// The contracts' reals (`crate::spec`, in f64) as the kernels compute: f32. `{:?}` writes the
/// shortest decimal that reads back as the same f32.
impl Constant for f64 {
    fn declare(&self, name: &str) -> String {
        format!("const {name}: f32 = {:?};\n", *self as f32)
    }
}

impl<const N: usize> Constant for [u32; N] {
    fn declare(&self, name: &str) -> String {
        let values: Vec<String> = self.iter().map(|v| format!("{v}u")).collect();
        format!(
            "const {name}: array<u32, {N}> = array<u32, {N}>({});\n",
            values.join(", ")
        )
    }
}

/// WGSL declarations of the named Rust constants (u32, f64 or u32 arrays), under their names.
macro_rules! constants {
    ($($name:ident),* $(,)?) => {
        [$($crate::gpu::wgsl::Constant::declare(&$name, stringify!($name))),*].concat()
    };
}
pub(crate) use constants;

/// A program's WGSL: the preamble of what it shares with Rust (uniform structs, constants;
/// [`WORKGROUP`] for every program), then its hand-written files.
pub struct Source {
    pub preamble: String,
    pub kernels: Vec<&'static str>,
}

impl Source {
    pub fn new(shared: &[&str], kernels: &[&'static str]) -> Self {
        Self {
            preamble: constants![WORKGROUP] + &shared.concat(),
            kernels: kernels.to_vec(),
        }
    }

    /// The program's whole text.
    pub fn text(&self) -> String {
        let mut text = self.preamble.clone();
        text.extend(self.kernels.iter().copied());
        text
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::super::{isp, nn};

    /// Every file under `dir` whose name ends in `extension`.
    fn files(dir: &Path, extension: &str, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, extension, found);
            } else if path.extension().is_some_and(|e| e == extension) {
                found.push(path);
            }
        }
    }

    /// The names `text` declares with `keyword` at the start of a line (`const NAME`,
    /// `pub(crate) struct NAME`).
    fn declared(text: &str, keyword: &str) -> BTreeSet<String> {
        text.lines()
            .map(|line| {
                let line = line.trim_start();
                ["pub(crate) ", "pub(super) ", "pub "]
                    .iter()
                    .find_map(|v| line.strip_prefix(v))
                    .unwrap_or(line)
            })
            .filter_map(|line| line.strip_prefix(keyword))
            .filter_map(|rest| {
                let name: String = rest
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                (!name.is_empty()).then_some(name)
            })
            .collect()
    }

    /// A constant or uniform struct that Rust defines must not come back as a copy in a WGSL
    /// file: the kernels take them from the generated preamble only.
    #[test]
    fn no_wgsl_file_declares_what_rust_defines() {
        let gpu = Path::new(env!("CARGO_MANIFEST_DIR")).join("crate/gpu");
        let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("crate/spec");
        let mut wgsl = Vec::new();
        files(&gpu, "wgsl", &mut wgsl);
        assert!(wgsl.len() >= 10, "found only {wgsl:?}");
        let mut rust = Vec::new();
        files(&gpu, "rs", &mut rust);
        files(&spec, "rs", &mut rust);

        let preambles: String = [isp::source()]
            .into_iter()
            .chain(nn::sources())
            .map(|source| source.preamble)
            .collect();
        let mut emitted = declared(&preambles, "const ");
        emitted.extend(declared(&preambles, "struct "));
        let mut rust_constants = BTreeSet::new();
        for path in &rust {
            let text = std::fs::read_to_string(path).unwrap();
            rust_constants.extend(declared(&text, "const "));
        }
        assert!(rust_constants.contains("WORKGROUP") && emitted.contains("Dims"));

        for path in &wgsl {
            let text = std::fs::read_to_string(path).unwrap();
            let mut names = declared(&text, "const ");
            names.extend(declared(&text, "struct "));
            let copies: Vec<&String> = names
                .iter()
                .filter(|n| emitted.contains(*n) || rust_constants.contains(*n))
                .collect();
            assert!(
                copies.is_empty(),
                "{} declares {copies:?}, which Rust defines: take them from the preamble",
                path.display()
            );
        }
    }

    /// Each program's source is its preamble followed by its kernels, and the preamble carries
    /// what the kernels use (a spot check per kind of declaration).
    #[test]
    fn preambles_declare_structs_and_constants() {
        let isp = isp::source().preamble;
        assert!(isp.starts_with("const WORKGROUP: u32 = 256u;\n"), "{isp}");
        assert!(isp.contains("struct Reduce {\n    kind: u32,"), "{isp}");
        assert!(isp.contains("const BN_EPS: f32 = 1e-5;\n"), "{isp}");
        assert!(isp.contains("const GAUSSIAN_BLUR: u32 = 26u;\n"), "{isp}");
        assert!(
            isp.contains("const B_STAGES: array<u32, 5> = array<u32, 5>(19u, 16u, 11u, 6u, 3u);"),
            "{isp}"
        );
    }
}
