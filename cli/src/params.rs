//! The parameters cache: public parameters for `2^k` rows are slow to make (about a minute for IPA at
//! k = 18), so they are made once per machine and kept on disk.
//!
//! Files are named `ipa-k{K}.params` (IPA generators, hashed to the curve: anyone can recompute them) and
//! `kzg-insecure-seed0-k{K}.params` (a KZG SRS whose secret comes from a public seed: for tests only).
//! Either scheme's parameters for a smaller `k` are a prefix of those for a larger one (IPA generator `i`
//! is `hash_to_curve(i)`; KZG's are `[s^i]G`), so a larger cached file serves by downsizing. Files are
//! written to a temporary name and renamed, so a reader never sees half a file.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use veil_verifier::artifact::MAX_K;
use veil_verifier::backend::{Params, Scheme};

/// The seed of the insecure KZG test SRS; prover and verifier must use the same one.
const INSECURE_KZG_SEED: u64 = 0;

/// Where parameters are cached.
pub struct ParamsCache {
    dir: PathBuf,
    /// Print what is loaded or generated on stderr.
    verbose: bool,
}

/// The cache directory: `--params-dir`, else `$VEIL_PARAMS_DIR`, `$XDG_CACHE_HOME/veil`, `~/.cache/veil`.
pub fn default_dir() -> Result<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("VEIL_PARAMS_DIR") {
        return Ok(dir);
    }
    if let Some(cache) = var("XDG_CACHE_HOME") {
        return Ok(cache.join("veil"));
    }
    match var("HOME") {
        Some(home) => Ok(home.join(".cache").join("veil")),
        None => bail!("no parameters directory: pass --params-dir or set VEIL_PARAMS_DIR"),
    }
}

impl ParamsCache {
    /// A cache in `dir`, or in [`default_dir`].
    pub fn new(dir: Option<&Path>, verbose: bool) -> Result<Self> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => default_dir()?,
        };
        Ok(ParamsCache { dir, verbose })
    }

    fn file(&self, scheme: Scheme, k: u32) -> PathBuf {
        let name = match scheme {
            Scheme::Ipa => format!("ipa-k{k}.params"),
            Scheme::Kzg => format!("kzg-insecure-seed{INSECURE_KZG_SEED}-k{k}.params"),
        };
        self.dir.join(name)
    }

    fn note(&self, message: &str) {
        if self.verbose {
            eprintln!("{message}");
        }
    }

    /// Parameters of `scheme` for exactly `2^k` rows: the cached file for `k`, else the smallest larger cached
    /// file downsized, else generated (and cached). KZG parameters are the insecure test SRS.
    pub fn get(&self, scheme: Scheme, k: u32) -> Result<Params> {
        if k == 0 || k > MAX_K {
            bail!("parameters for 2^{k} rows: k must be in 1..={MAX_K}");
        }
        for have in k..=MAX_K {
            let path = self.file(scheme, have);
            if !path.exists() {
                continue;
            }
            let t = Instant::now();
            match read(scheme, have, &path) {
                Ok(params) => {
                    self.note(&format!(
                        "loaded parameters for 2^{have} rows from {} in {:.1} s",
                        path.display(),
                        t.elapsed().as_secs_f64()
                    ));
                    if have == k {
                        return Ok(params);
                    }
                    return params.downsized(k).context("downsizing cached parameters");
                }
                Err(e) => self.note(&format!("ignoring {}: {e:#}", path.display())),
            }
        }
        let what = match scheme {
            Scheme::Ipa => "IPA parameters",
            Scheme::Kzg => "the insecure test KZG SRS",
        };
        self.note(&format!("generating {what} for 2^{k} rows (once; cached in {})", self.dir.display()));
        let t = Instant::now();
        let params = match scheme {
            Scheme::Ipa => Params::ipa(k),
            Scheme::Kzg => Params::insecure_kzg_for_tests(k, INSECURE_KZG_SEED),
        };
        self.note(&format!("generated in {:.1} s", t.elapsed().as_secs_f64()));
        if let Err(e) = self.store(scheme, k, &params) {
            self.note(&format!("warning: could not cache parameters in {}: {e:#}", self.dir.display()));
        }
        Ok(params)
    }

    fn store(&self, scheme: Scheme, k: u32, params: &Params) -> Result<()> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let path = self.file(scheme, k);
        let tmp = path.with_extension(format!("params.tmp{}", std::process::id()));
        let write = || -> Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&params.to_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            Ok(())
        };
        let result = write();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.with_context(|| format!("writing {}", path.display()))
    }
}

/// The byte length of a parameters file for `2^k` rows (halo2's `write` layout), so a corrupt or foreign
/// file is refused before it is parsed.
fn expected_len(scheme: Scheme, k: u32) -> u64 {
    let n = 1u64 << k;
    match scheme {
        // k, then g and g_lagrange (compressed points), then w and u.
        Scheme::Ipa => 4 + (2 * n + 2) * 32,
        // k, then g and g_lagrange (raw affine points), then g2 and s_g2.
        Scheme::Kzg => 4 + 2 * n * 64 + 2 * 128,
    }
}

fn read(scheme: Scheme, k: u32, path: &Path) -> Result<Params> {
    let bytes = std::fs::read(path)?;
    if bytes.len() as u64 != expected_len(scheme, k) || bytes[..4] != k.to_le_bytes() {
        bail!("not parameters for 2^{k} rows ({} bytes)", bytes.len());
    }
    let params = Params::from_bytes(scheme, &bytes)?;
    if params.k() != k || params.scheme() != scheme {
        bail!("holds parameters for 2^{} rows", params.k());
    }
    Ok(params)
}

/// The loud warning printed whenever the insecure test SRS is used.
pub const INSECURE_KZG_WARNING: &str = "\
WARNING: KZG with an INSECURE test SRS. Its secret comes from a public seed, so anyone can forge proofs \
that verify against this model. Use it for tests and benchmarks only, never to convince anyone of anything.";

/// Refuses KZG without `--insecure-test-srs` (there is no ceremony file support yet) and prints the
/// warning when it is acknowledged.
pub fn check_scheme(scheme: Scheme, insecure_test_srs: bool) -> Result<()> {
    if scheme == Scheme::Kzg {
        if !insecure_test_srs {
            bail!(
                "this model uses KZG, and the only KZG setup available is the insecure test SRS: \
                 pass --insecure-test-srs to use it anyway"
            );
        }
        eprintln!("{INSECURE_KZG_WARNING}");
    }
    Ok(())
}
