//! Model manifests: the TOML file beside an ONNX model that says what the model computes, what input it
//! expects (shape, channel order, normalisation), how to read its output, and where it came from.
//!
//! A manifest is bound to its model by content: its `sha256` field must be the digest of the `.onnx`
//! bytes, and [`find_for_model`] looks manifests up by that digest, so renaming a model keeps its
//! manifest and a modified model finds none.
//!
//! ```toml
//! schema = 1
//! name = "age-v1"
//! task = "age"                       # "age" | "gender" | "classifier"
//! onnx = "age-v1.onnx"
//! sha256 = "4f9f…"                   # of the .onnx file
//! calibration = "age-v1.calib.json"  # optional; defaults to <onnx stem>.calib.json
//!
//! [provenance]
//! source = "…"
//! upstream = "…"                     # optional
//! licence = "CC0-1.0"
//! attribution = "…"                  # optional
//!
//! [input]
//! name = "images"
//! shape = [1, 3, 64, 64]
//! layout = "NCHW"
//! channel_order = "RGB"              # "RGB" | "BGR"
//! means = [122.781998, 117.000999, 104.297997]
//! scale = 0.00390625
//!
//! [output]
//! name = "probabilities"
//! shape = [1, 81]
//! softmax_in_graph = true
//! age_bins = [0.25, 1.0, …]          # age only: one value per output class
//! labels = ["female", "male"]        # gender (exactly two) and classifier only
//! ```

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The manifest schema version this crate reads and writes.
pub const SCHEMA: u32 = 1;
/// The largest manifest file read, in bytes.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;
/// The largest input height or width a manifest may declare.
pub const MAX_INPUT_SIDE: usize = 4096;

/// Errors of reading, validating and finding manifests.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// A file or directory could not be read.
    #[error("cannot read {path:?}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a manifest: bad TOML, a missing or unknown field, a value of the wrong type.
    #[error("cannot parse manifest {path:?}: {detail}")]
    Parse {
        /// The manifest file.
        path: PathBuf,
        /// What the parser reported.
        detail: String,
    },
    /// No manifest in the model's directory has the model's sha256.
    #[error("no manifest for model {model:?}: no *.toml in {searched_dir:?} has its sha256")]
    NotFound {
        /// The model file.
        model: PathBuf,
        /// The directory searched.
        searched_dir: PathBuf,
    },
    /// The manifest parses but a field's value is not acceptable.
    #[error("invalid manifest{}: `{field}` {detail}", located(path))]
    Invalid {
        /// The manifest file, when the manifest was read from one.
        path: Option<PathBuf>,
        /// The offending field, as a TOML path (`output.age_bins`).
        field: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}

fn located(path: &Option<PathBuf>) -> String {
    path.as_ref().map(|p| format!(" {p:?}")).unwrap_or_default()
}

/// A field and what is wrong with it; [`ManifestError::Invalid`] without the path.
type FieldError = (&'static str, String);

/// A model manifest (see the module documentation for the file format).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    /// Schema version; must be [`SCHEMA`].
    pub schema: u32,
    /// Model name, e.g. `age-v1`.
    pub name: String,
    /// What the output means; [`ModelManifest::task`] pairs it with the output's bins or labels.
    pub task: TaskKind,
    /// The ONNX file, relative to the manifest's directory.
    pub onnx: String,
    /// Lower-case hex sha256 of the ONNX file.
    pub sha256: String,
    /// The default calibration file, relative to the manifest's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<String>,
    /// Where the model comes from and under which licence.
    pub provenance: Provenance,
    /// The input tensor.
    pub input: InputSpec,
    /// The output tensor.
    pub output: OutputSpec,
}

/// The kind of task, as written in the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// Age regression over bins: the estimate is the probability-weighted mean of `age_bins`.
    Age,
    /// Binary gender classification with two labels.
    Gender,
    /// A generic classifier with one label per class.
    Classifier,
}

/// A validated task with the data needed to read the model's output.
#[derive(Clone, Debug, PartialEq)]
pub enum Task {
    /// Age: the value of each output class, in years.
    Age {
        /// One age per output class.
        bins: Vec<f64>,
    },
    /// Gender: the labels of the two output classes.
    Gender {
        /// Label of class 0 and class 1.
        labels: [String; 2],
    },
    /// A classifier: one label per output class.
    Classifier {
        /// One label per output class.
        labels: Vec<String>,
    },
}

impl Task {
    /// The age of each output class in quarter years, rounded (what the age claim's circuit weighs the
    /// classes by), for an age model; `None` for any other task.
    pub fn age_quarters(&self) -> Option<Vec<i64>> {
        match self {
            Task::Age { bins } => Some(bins.iter().map(|b| (b * 4.0).round() as i64).collect()),
            _ => None,
        }
    }
}

/// Where a model comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The file Veil ships and where it was taken from.
    pub source: String,
    /// The original the shipped file was converted from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// SPDX licence identifier.
    pub licence: String,
    /// Whom to credit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<String>,
}

/// Memory layout of the input tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// Batch, channels, height, width.
    #[serde(rename = "NCHW")]
    Nchw,
}

/// The order of the three colour channels of a model input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelOrder {
    /// Red, green, blue.
    #[serde(rename = "RGB")]
    Rgb,
    /// Blue, green, red.
    #[serde(rename = "BGR")]
    Bgr,
}

/// The model input: an image tensor and its normalisation `(v − means[c]) · scale`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// ONNX input name.
    pub name: String,
    /// `[1, 3, H, W]`.
    pub shape: Vec<usize>,
    /// Tensor layout.
    pub layout: Layout,
    /// Channel order of the tensor.
    pub channel_order: ChannelOrder,
    /// Per-channel mean of 0..=255 pixel values, in `channel_order`.
    pub means: [f64; 3],
    /// Factor applied after subtracting the mean.
    pub scale: f64,
}

/// The model output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// ONNX output name.
    pub name: String,
    /// Output shape; the last dimension is the class count.
    pub shape: Vec<usize>,
    /// Whether the graph already ends in a softmax (the output is probabilities).
    pub softmax_in_graph: bool,
    /// Age task: the age of each class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_bins: Option<Vec<f64>>,
    /// Gender and classifier tasks: the label of each class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

/// Reads and validates a manifest.
pub fn load(path: &Path) -> Result<ModelManifest, ManifestError> {
    let io_err = |source| ManifestError::Io { path: path.to_path_buf(), source };
    let mut text = String::new();
    let file = File::open(path).map_err(io_err)?;
    let read = file.take(MAX_MANIFEST_BYTES + 1).read_to_string(&mut text);
    let parse_err = |detail: String| ManifestError::Parse { path: path.to_path_buf(), detail };
    match read {
        Ok(n) if n as u64 > MAX_MANIFEST_BYTES => {
            return Err(parse_err(format!("file is over {MAX_MANIFEST_BYTES} bytes")))
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => return Err(parse_err(e.to_string())),
        Err(e) => return Err(io_err(e)),
    }
    let manifest: ModelManifest = toml::from_str(&text).map_err(|e| parse_err(e.to_string()))?;
    manifest.check().map_err(|(field, detail)| ManifestError::Invalid {
        path: Some(path.to_path_buf()),
        field,
        detail,
    })?;
    Ok(manifest)
}

/// Finds the manifest of a model by content.
///
/// Tries `<dir>/<stem>.toml` first; when it is missing or its `sha256` differs from the digest of
/// `onnx_bytes`, scans the other `*.toml` files of the model's directory (in name order, skipping files that
/// are not valid manifests) for one whose `sha256` matches. Returns the manifest and its path.
pub fn find_for_model(onnx_path: &Path, onnx_bytes: &[u8]) -> Result<(ModelManifest, PathBuf), ManifestError> {
    let digest = sha256_hex(onnx_bytes);
    let dir = match onnx_path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let named = onnx_path.file_stem().map(|stem| {
        let mut file = stem.to_os_string();
        file.push(".toml");
        dir.join(file)
    });
    if let Some(named) = named.as_ref().filter(|p| p.is_file()) {
        // The manifest named after the model is surely meant for it: report it when it is broken.
        let manifest = load(named)?;
        if manifest.sha256.eq_ignore_ascii_case(&digest) {
            return Ok((manifest, named.clone()));
        }
    }
    for candidate in toml_files(&dir)? {
        if Some(&candidate) == named.as_ref() {
            continue;
        }
        match load(&candidate) {
            Ok(manifest) if manifest.sha256.eq_ignore_ascii_case(&digest) => return Ok((manifest, candidate)),
            Ok(_) | Err(ManifestError::Parse { .. } | ManifestError::Invalid { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    Err(ManifestError::NotFound { model: onnx_path.to_path_buf(), searched_dir: dir })
}

/// The `*.toml` files of `dir`, sorted by name.
fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let io_err = |source| ManifestError::Io { path: dir.to_path_buf(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        let is_toml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        if is_toml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    veil_verifier::Digest::of(bytes).to_string()
}

impl ModelManifest {
    /// The task with its output bins or labels, checked against the output shape: an age model needs one
    /// `age_bins` entry per class, a gender model exactly two `labels` and two classes, a classifier one
    /// label per class.
    pub fn task(&self) -> Result<Task, ManifestError> {
        self.check_task().map_err(|(field, detail)| ManifestError::Invalid { path: None, field, detail })
    }

    /// The number of output classes (the last output dimension).
    pub fn classes(&self) -> usize {
        self.output.shape.last().copied().unwrap_or(0)
    }

    /// The ONNX file's path, given the directory holding the manifest.
    pub fn onnx_path(&self, manifest_dir: &Path) -> PathBuf {
        manifest_dir.join(&self.onnx)
    }

    /// The default calibration file's path, given the directory holding the manifest: `calibration`, or
    /// `<onnx stem>.calib.json` when the manifest names none.
    pub fn calibration_path(&self, manifest_dir: &Path) -> PathBuf {
        match &self.calibration {
            Some(file) => manifest_dir.join(file),
            None => {
                let stem = Path::new(&self.onnx).file_stem().unwrap_or(self.name.as_ref());
                let mut file = stem.to_os_string();
                file.push(".calib.json");
                manifest_dir.join(file)
            }
        }
    }

    /// The preprocessing this model expects. Sizes are 0 when the input shape is not `[1, 3, H, W]`,
    /// which [`crate::preprocess::preprocess`] refuses.
    #[cfg(feature = "images")]
    pub fn normalization(&self) -> crate::preprocess::Normalization {
        let dim = |axis: usize| self.input.shape.get(axis).copied().unwrap_or(0);
        let valid = self.input.shape.len() == 4;
        crate::preprocess::Normalization {
            width: if valid { dim(3) } else { 0 },
            height: if valid { dim(2) } else { 0 },
            channel_order: self.input.channel_order,
            means: self.input.means.map(|m| m as f32),
            scale: self.input.scale as f32,
        }
    }

    /// Every check `load` makes.
    fn check(&self) -> Result<(), FieldError> {
        if self.schema != SCHEMA {
            return Err(("schema", format!("is {}, but this version of Veil reads {SCHEMA}", self.schema)));
        }
        if self.name.trim().is_empty() {
            return Err(("name", "is empty".into()));
        }
        check_relative("onnx", &self.onnx)?;
        if let Some(calibration) = &self.calibration {
            check_relative("calibration", calibration)?;
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(("sha256", format!("{:?} is not 64 hex digits", self.sha256)));
        }
        self.check_input()?;
        if self.output.shape.is_empty() || self.output.shape.contains(&0) {
            return Err(("output.shape", format!("{:?} must be non-empty with no zero dimension", self.output.shape)));
        }
        self.check_task().map(|_| ())
    }

    fn check_input(&self) -> Result<(), FieldError> {
        let input = &self.input;
        let side_ok = |d: usize| (1..=MAX_INPUT_SIDE).contains(&d);
        match input.shape[..] {
            [1, 3, h, w] if side_ok(h) && side_ok(w) => {}
            _ => {
                let detail = format!("{:?} is not [1, 3, H, W] with H and W in 1..={MAX_INPUT_SIDE}", input.shape);
                return Err(("input.shape", detail));
            }
        }
        if !input.means.iter().all(|m| m.is_finite()) {
            return Err(("input.means", format!("{:?} are not all finite", input.means)));
        }
        if !input.scale.is_finite() || input.scale == 0.0 {
            return Err(("input.scale", format!("{} is not a finite non-zero number", input.scale)));
        }
        Ok(())
    }

    fn check_task(&self) -> Result<Task, FieldError> {
        let classes = self.classes();
        let output = &self.output;
        if self.task != TaskKind::Age && output.age_bins.is_some() {
            return Err(("output.age_bins", "is only allowed for the age task".into()));
        }
        match self.task {
            TaskKind::Age => {
                if output.labels.is_some() {
                    return Err(("output.labels", "is not allowed for the age task".into()));
                }
                let bins =
                    output.age_bins.clone().ok_or(("output.age_bins", String::from("is required for the age task")))?;
                if bins.len() != classes {
                    return Err((
                        "output.age_bins",
                        format!("has {} entries for {classes} output classes", bins.len()),
                    ));
                }
                if !bins.iter().all(|b| b.is_finite()) {
                    return Err(("output.age_bins", "are not all finite".into()));
                }
                Ok(Task::Age { bins })
            }
            TaskKind::Gender => {
                let labels = self.labels(classes)?;
                let labels: [String; 2] = labels
                    .try_into()
                    .map_err(|l: Vec<String>| ("output.labels", format!("has {} labels; gender needs 2", l.len())))?;
                Ok(Task::Gender { labels })
            }
            TaskKind::Classifier => Ok(Task::Classifier { labels: self.labels(classes)? }),
        }
    }

    /// The labels, checked to be one per class.
    fn labels(&self, classes: usize) -> Result<Vec<String>, FieldError> {
        let task = self.task;
        let labels =
            self.output.labels.clone().ok_or(("output.labels", format!("is required for the {task:?} task")))?;
        if labels.len() != classes {
            return Err(("output.labels", format!("has {} labels for {classes} output classes", labels.len())));
        }
        Ok(labels)
    }
}

/// Checks that a file named by the manifest stays inside the manifest's directory tree.
fn check_relative(field: &'static str, file: &str) -> Result<(), FieldError> {
    let path = Path::new(file);
    let plain = path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if file.is_empty() || !plain {
        return Err((field, format!("{file:?} must be a relative path without `..`")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL_BYTES: &[u8] = b"pretend this is an ONNX model";

    fn manifest_text(name: &str, sha256: &str) -> String {
        format!(
            r#"schema = 1
name = "{name}"
task = "gender"
onnx = "{name}.onnx"
sha256 = "{sha256}"

[provenance]
source = "test"
licence = "CC0-1.0"

[input]
name = "images"
shape = [1, 3, 32, 32]
layout = "NCHW"
channel_order = "RGB"
means = [122.781998, 117.000999, 104.297997]
scale = 0.00390625

[output]
name = "probabilities"
shape = [1, 2]
softmax_in_graph = true
labels = ["female", "male"]
"#
        )
    }

    /// A fresh, empty directory under the system temp dir.
    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("veil-manifest-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn parsed(text: &str) -> ModelManifest {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn finds_the_named_manifest_and_a_renamed_model() {
        let dir = temp_dir("find");
        std::fs::write(dir.join("gender.toml"), manifest_text("gender", &sha256_hex(MODEL_BYTES))).unwrap();
        std::fs::write(dir.join("other.toml"), manifest_text("other", &sha256_hex(b"other"))).unwrap();
        std::fs::write(dir.join("notes.toml"), "not = [a manifest").unwrap();

        let (manifest, path) = find_for_model(&dir.join("gender.onnx"), MODEL_BYTES).unwrap();
        assert_eq!((manifest.name.as_str(), path), ("gender", dir.join("gender.toml")));
        // A renamed copy is found by its digest.
        let (manifest, path) = find_for_model(&dir.join("renamed-copy.onnx"), MODEL_BYTES).unwrap();
        assert_eq!((manifest.name.as_str(), path), ("gender", dir.join("gender.toml")));
        // A model named like another's manifest, but with the bytes of this one, still finds this one.
        let (manifest, _) = find_for_model(&dir.join("other.onnx"), MODEL_BYTES).unwrap();
        assert_eq!(manifest.name, "gender");
        // A modified model finds none.
        let err = find_for_model(&dir.join("gender.onnx"), b"pretend this is an ONNX modeL").unwrap_err();
        assert!(matches!(err, ManifestError::NotFound { searched_dir, .. } if searched_dir == dir));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_broken_named_manifest_is_reported() {
        let dir = temp_dir("broken");
        std::fs::write(dir.join("m.toml"), manifest_text("m", &sha256_hex(MODEL_BYTES)) + "extra = 1\n").unwrap();
        let err = find_for_model(&dir.join("m.onnx"), MODEL_BYTES).unwrap_err();
        assert!(matches!(err, ManifestError::Parse { .. }), "{err}");
        let err = find_for_model(&dir.join("missing-dir/m.onnx"), MODEL_BYTES).unwrap_err();
        assert!(matches!(err, ManifestError::Io { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn task_validation() {
        let sha = sha256_hex(MODEL_BYTES);
        let gender = parsed(&manifest_text("g", &sha));
        assert_eq!(gender.task().unwrap(), Task::Gender { labels: ["female".into(), "male".into()] });
        assert_eq!(gender.calibration_path(Path::new("m")), Path::new("m/g.calib.json"));

        let three = manifest_text("g", &sha)
            .replace("shape = [1, 2]", "shape = [1, 3]")
            .replace(r#"["female", "male"]"#, r#"["a", "b", "c"]"#);
        let err = parsed(&three).task().unwrap_err();
        assert!(matches!(err, ManifestError::Invalid { field: "output.labels", .. }), "{err}");
        let classifier = parsed(&three.replace(r#"task = "gender""#, r#"task = "classifier""#));
        assert_eq!(classifier.task().unwrap(), Task::Classifier { labels: vec!["a".into(), "b".into(), "c".into()] });

        let age = manifest_text("g", &sha).replace(r#"task = "gender""#, r#"task = "age""#);
        let err = parsed(&age).task().unwrap_err();
        assert!(matches!(err, ManifestError::Invalid { field: "output.labels", .. }), "{err}");
        let age = age.replace(r#"labels = ["female", "male"]"#, "age_bins = [1.0, 2.0, 3.0]");
        let err = parsed(&age).task().unwrap_err();
        assert!(matches!(err, ManifestError::Invalid { field: "output.age_bins", .. }), "{err}");
        let age = parsed(&age.replace("shape = [1, 2]", "shape = [1, 3]"));
        assert_eq!(age.task().unwrap(), Task::Age { bins: vec![1.0, 2.0, 3.0] });
    }

    #[test]
    fn load_rejects_bad_fields() {
        let dir = temp_dir("load");
        let sha = sha256_hex(MODEL_BYTES);
        let cases = [
            ("schema = 1", "schema = 2", "schema"),
            (&sha[..], "abc", "sha256"),
            ("onnx = \"m.onnx\"", "onnx = \"../m.onnx\"", "onnx"),
            ("shape = [1, 3, 32, 32]", "shape = [1, 32, 32, 3]", "input.shape"),
            ("scale = 0.00390625", "scale = 0.0", "input.scale"),
        ];
        for (from, to, field) in cases {
            let path = dir.join("m.toml");
            std::fs::write(&path, manifest_text("m", &sha).replacen(from, to, 1)).unwrap();
            let err = load(&path).unwrap_err();
            assert!(matches!(&err, ManifestError::Invalid { field: f, .. } if *f == field), "{field}: {err}");
        }
        let path = dir.join("m.toml");
        std::fs::write(&path, manifest_text("m", &sha).replace("layout = \"NCHW\"", "layout = \"NHWC\"")).unwrap();
        assert!(matches!(load(&path), Err(ManifestError::Parse { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn shipped_manifests_match_their_models() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        for (stem, classes) in [("age-v1", 81), ("gender-v1", 2)] {
            let onnx = models.join(format!("{stem}.onnx"));
            let bytes = std::fs::read(&onnx).unwrap();
            let (manifest, path) = find_for_model(&onnx, &bytes).unwrap();
            assert_eq!(path, models.join(format!("{stem}.toml")));
            assert_eq!(manifest.name, stem);
            assert_eq!(manifest.classes(), classes);
            manifest.task().unwrap();
            let round_trip: ModelManifest = toml::from_str(&toml::to_string(&manifest).unwrap()).unwrap();
            assert_eq!(round_trip, manifest);
        }
    }
}
