//! Sample lists: the images a model is calibrated and checked on, read from a `samples.toml`.
//!
//! ```toml
//! [[sample]]
//! name = "astronaut"            # unique within the file
//! file = "astronaut.png"        # relative to the directory of samples.toml
//! crop = [150, 25, 310, 185]    # optional [left, top, right, bottom), right/bottom exclusive
//! role = "calibration"          # "calibration" | "holdout"
//! ```
//!
//! A sample without `crop` uses the image's centred square.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

/// The name of the sample list [`images_in_dir`] looks for.
pub const SAMPLES_FILE: &str = "samples.toml";
/// The largest sample list read, in bytes.
pub const MAX_SAMPLES_BYTES: u64 = 1024 * 1024;

/// Errors of reading a sample list or a directory of images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SamplesError {
    /// A file or directory could not be read.
    #[error("cannot read {path:?}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a sample list: bad TOML, a missing or unknown field, a value of the wrong type.
    #[error("cannot parse sample list {path:?}: {detail}")]
    Parse {
        /// The sample list.
        path: PathBuf,
        /// What the parser reported.
        detail: String,
    },
    /// A sample entry parses but is not acceptable.
    #[error("sample {sample:?} in {path:?}: {detail}")]
    Invalid {
        /// The sample list.
        path: PathBuf,
        /// The sample's name.
        sample: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Two samples share a name.
    #[error("sample name {name:?} appears more than once in {path:?}")]
    DuplicateName {
        /// The sample list.
        path: PathBuf,
        /// The repeated name.
        name: String,
    },
}

/// What a sample is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Used to choose quantization scales.
    Calibration,
    /// Kept out of calibration, to measure accuracy on unseen inputs.
    Holdout,
}

/// One sample: an image and the box framing the subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Unique name of the sample.
    pub name: String,
    /// The image file, resolved against the directory of the sample list.
    pub file: PathBuf,
    /// `[left, top, right, bottom)` in pixels, or `None` for the centred square.
    pub crop: Option<[u32; 4]>,
    /// What the sample is used for.
    pub role: Role,
}

#[cfg(feature = "images")]
impl Sample {
    /// The crop to preprocess this sample with.
    pub fn crop(&self) -> crate::preprocess::Crop {
        match self.crop {
            Some([left, top, right, bottom]) => crate::preprocess::Crop::Box { left, top, right, bottom },
            None => crate::preprocess::Crop::CenterSquare,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SamplesFile {
    #[serde(default)]
    sample: Vec<SampleEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleEntry {
    name: String,
    file: String,
    #[serde(default)]
    crop: Option<[u32; 4]>,
    role: Role,
}

/// Reads a sample list, resolving files against its directory and checking that names are unique, files
/// are relative paths without `..`, and crop boxes are non-empty.
pub fn load_samples(path: &Path) -> Result<Vec<Sample>, SamplesError> {
    let text = read_limited(path)?;
    let parsed: SamplesFile =
        toml::from_str(&text).map_err(|e| SamplesError::Parse { path: path.to_path_buf(), detail: e.to_string() })?;
    let base = path.parent().unwrap_or(Path::new(""));
    let mut seen = HashSet::new();
    let mut samples = Vec::with_capacity(parsed.sample.len());
    for entry in parsed.sample {
        let invalid =
            |detail: String| SamplesError::Invalid { path: path.to_path_buf(), sample: entry.name.clone(), detail };
        if entry.name.trim().is_empty() {
            return Err(invalid("the name is empty".into()));
        }
        let file = Path::new(&entry.file);
        if entry.file.is_empty() || !file.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
            return Err(invalid(format!("file {:?} must be a relative path without `..`", entry.file)));
        }
        if let Some(crop @ [left, top, right, bottom]) = entry.crop {
            if right <= left || bottom <= top {
                return Err(invalid(format!("crop {crop:?} (left, top, right, bottom) is empty")));
            }
        }
        if !seen.insert(entry.name.clone()) {
            return Err(SamplesError::DuplicateName { path: path.to_path_buf(), name: entry.name });
        }
        samples.push(Sample { file: base.join(file), name: entry.name, crop: entry.crop, role: entry.role });
    }
    Ok(samples)
}

fn read_limited(path: &Path) -> Result<String, SamplesError> {
    use std::io::Read;
    let io_err = |source| SamplesError::Io { path: path.to_path_buf(), source };
    let mut text = String::new();
    let file = std::fs::File::open(path).map_err(io_err)?;
    let parse_err = |detail: String| SamplesError::Parse { path: path.to_path_buf(), detail };
    match file.take(MAX_SAMPLES_BYTES + 1).read_to_string(&mut text) {
        Ok(n) if n as u64 > MAX_SAMPLES_BYTES => Err(parse_err(format!("file is over {MAX_SAMPLES_BYTES} bytes"))),
        Ok(_) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(parse_err(e.to_string())),
        Err(e) => Err(io_err(e)),
    }
}

/// The samples of a directory: the entries of its `samples.toml` when it has one, else every `.png`,
/// `.jpg` and `.jpeg` file (sorted by file name) with no crop and the calibration role, named after the
/// file stem (the whole file name when two files share a stem).
pub fn images_in_dir(dir: &Path) -> Result<Vec<Sample>, SamplesError> {
    let list = dir.join(SAMPLES_FILE);
    if list.is_file() {
        return load_samples(&list);
    }
    let io_err = |source| SamplesError::Io { path: dir.to_path_buf(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["png", "jpg", "jpeg"].iter().any(|x| e.eq_ignore_ascii_case(x)));
        if is_image && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    let stem = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut stems = std::collections::HashMap::new();
    for file in &files {
        *stems.entry(stem(file)).or_insert(0usize) += 1;
    }
    Ok(files
        .into_iter()
        .map(|file| {
            let name = match stems.get(&stem(&file)) {
                Some(1) => stem(&file),
                _ => file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            };
            Sample { name, file, crop: None, role: Role::Calibration }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("veil-samples-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_the_shipped_sample_list() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/samples/samples.toml");
        let samples = load_samples(&path).unwrap();
        assert_eq!(samples.len(), 10);
        let first = &samples[0];
        assert_eq!(
            (first.name.as_str(), first.crop, first.role),
            ("astronaut", Some([150, 25, 310, 185]), Role::Calibration)
        );
        assert_eq!(first.file, path.parent().unwrap().join("astronaut.png"));
        let face1 = samples.iter().find(|s| s.name == "face-1").unwrap();
        assert_eq!((face1.crop, face1.role), (None, Role::Holdout));
        assert!(samples.iter().all(|s| s.file.is_file()), "every sample file exists");
    }

    /// Whether an error is the expected one.
    type Check = fn(&SamplesError) -> bool;

    #[test]
    fn rejects_bad_entries() {
        let dir = temp_dir("bad");
        let path = dir.join(SAMPLES_FILE);
        let entry = |name: &str, file: &str, extra: &str| {
            format!("[[sample]]\nname = \"{name}\"\nfile = \"{file}\"\nrole = \"holdout\"\n{extra}\n")
        };
        let cases: [(String, Check); 5] = [
            (entry("a", "a.png", "") + &entry("a", "b.png", ""), |e| matches!(e, SamplesError::DuplicateName { .. })),
            (entry("a", "../a.png", ""), |e| matches!(e, SamplesError::Invalid { .. })),
            (entry("a", "a.png", "crop = [5, 0, 5, 9]"), |e| matches!(e, SamplesError::Invalid { .. })),
            (entry("a", "a.png", "crop = [0, 0, 9]"), |e| matches!(e, SamplesError::Parse { .. })),
            (entry("a", "a.png", "colour = 1"), |e| matches!(e, SamplesError::Parse { .. })),
        ];
        for (text, expected) in cases {
            std::fs::write(&path, &text).unwrap();
            let err = load_samples(&path).unwrap_err();
            assert!(expected(&err), "{text}: {err}");
        }
        std::fs::write(&path, "[[sample]]\nname = \"a\"\nfile = \"a.png\"\nrole = \"training\"\n").unwrap();
        assert!(matches!(load_samples(&path), Err(SamplesError::Parse { .. })));
        assert!(matches!(load_samples(&dir.join("none.toml")), Err(SamplesError::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_without_a_list_yields_its_images() {
        let dir = temp_dir("dir");
        for file in ["b.jpg", "a.PNG", "c.jpeg", "a.jpg", "notes.txt"] {
            std::fs::write(dir.join(file), b"").unwrap();
        }
        std::fs::create_dir(dir.join("sub.png")).unwrap();
        let samples = images_in_dir(&dir).unwrap();
        let names: Vec<_> = samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a.PNG", "a.jpg", "b", "c"]);
        assert!(samples.iter().all(|s| s.crop.is_none() && s.role == Role::Calibration));
        assert_eq!(samples[2].file, dir.join("b.jpg"));

        std::fs::write(dir.join(SAMPLES_FILE), "[[sample]]\nname = \"x\"\nfile = \"b.jpg\"\nrole = \"holdout\"\n")
            .unwrap();
        let samples = images_in_dir(&dir).unwrap();
        assert_eq!(samples.len(), 1);
        assert_eq!((samples[0].name.as_str(), samples[0].role), ("x", Role::Holdout));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
