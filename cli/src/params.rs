//! The parameters cache: public parameters for `2^k` rows are slow to make (IPA at k = 18: hash-to-curve
//! of 2^18 generators, then their Lagrange basis, an FFT over curve points; minutes on a small machine), so
//! they are made once per machine and kept on disk.
//!
//! Files are named `ipa-k{K}.params` (IPA generators, hashed to the curve: anyone can recompute them; read
//! and written by `veil_verifier::backend::ParamSet::load_or_create`), `kzg-ptau-{ID}-k{K}.params` (a KZG SRS
//! cut from a powers-of-tau ceremony file given with `--srs`, filed under the file's
//! [`ptau_id`](veil_verifier::srs::ptau_id)) and `kzg-insecure-seed0-k{K}.params` (a KZG SRS whose secret
//! comes from a public seed: for tests only). Either scheme's parameters for a
//! smaller `k` are a prefix of those for a larger one (IPA generator `i` is `hash_to_curve(i)`; KZG's are
//! `[s^i]G`), so a larger cached file serves by downsizing. Files are written to a temporary name and
//! renamed, so a reader never sees half a file.
//!
//! Proving keys live in the `keys/` subdirectory, one file per slice, filed by the digest of the slice's
//! verifying key (`veil_core::prove::KeyCache`): a machine derives each key on its first proof of a model.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use veil_core::prove::KeyCache;
use veil_verifier::artifact::MAX_K;
use veil_verifier::backend::{ParamSet, Params, Scheme};
use veil_verifier::srs;

/// The seed of the insecure KZG test SRS; prover and verifier must use the same one.
const INSECURE_KZG_SEED: u64 = 0;

/// Where a command's parameters come from: the options of every command that proves or verifies.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Setup {
    /// Parameters cache (default: $VEIL_PARAMS_DIR, $XDG_CACHE_HOME/veil or ~/.cache/veil); proving keys go to
    /// its `keys/`.
    #[arg(long)]
    pub params_dir: Option<PathBuf>,
    /// KZG: the powers-of-tau ceremony file (snarkjs `.ptau`, e.g. a Perpetual Powers of Tau file of power ≥
    /// the model's largest k) to cut the reference string from; checked, then cached.
    #[arg(long, value_name = "FILE.ptau")]
    pub srs: Option<PathBuf>,
    /// KZG: use the insecure test SRS (its secret comes from a public seed) instead of a ceremony file.
    #[arg(long, conflicts_with = "srs")]
    pub insecure_test_srs: bool,
}

impl Setup {
    /// The parameters cache for a model of `scheme`, after checking that the options fit it: `--srs` or
    /// `--insecure-test-srs` (with its warning) for KZG, neither for IPA.
    pub fn cache(&self, scheme: Scheme, verbose: bool) -> Result<ParamsCache> {
        check_scheme(scheme, self)?;
        let mut cache = ParamsCache::new(self.params_dir.as_deref(), verbose)?;
        cache.srs = self.srs.clone();
        Ok(cache)
    }
}

/// Where parameters are cached.
pub struct ParamsCache {
    dir: PathBuf,
    /// Print what is loaded or generated on stderr.
    verbose: bool,
    /// The ceremony file KZG parameters are cut from (else the insecure test SRS).
    srs: Option<PathBuf>,
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
        Ok(ParamsCache { dir, verbose, srs: None })
    }

    /// The proving keys kept beside the parameters, in `keys/` (see [`KeyCache`]).
    pub fn key_cache(&self) -> KeyCache {
        KeyCache::new(self.dir.join("keys"))
    }

    fn file(&self, scheme: Scheme, k: u32) -> PathBuf {
        let name = match scheme {
            // The name `ParamSet::load_or_create` reads and writes.
            Scheme::Ipa => format!("ipa-k{k}.params"),
            Scheme::Kzg => format!("kzg-insecure-seed{INSECURE_KZG_SEED}-k{k}.params"),
        };
        self.dir.join(name)
    }

    fn ceremony_file(&self, id: &str, k: u32) -> PathBuf {
        self.dir.join(format!("kzg-ptau-{id}-k{k}.params"))
    }

    fn note(&self, message: &str) {
        if self.verbose {
            eprintln!("{message}");
        }
    }

    /// Parameters of `scheme` for every size in `ks`, each derived once: IPA through
    /// [`ParamSet::load_or_create`] (which generates the largest size once per machine and keeps every size on
    /// disk); KZG from the ceremony file (`--srs`) or else the insecure test SRS for the largest size, cached
    /// here.
    pub fn param_set(&self, scheme: Scheme, ks: &[u32]) -> Result<ParamSet> {
        self.load(scheme, ks, false)
    }

    /// The same, readied for proving ([`veil_core::prove::prepare`]: IPA's Lagrange-basis generators decoded
    /// for the prover's commitments), so that the first proof does not pay for it.
    pub fn param_set_for_proving(&self, scheme: Scheme, ks: &[u32]) -> Result<ParamSet> {
        self.load(scheme, ks, true)
    }

    fn load(&self, scheme: Scheme, ks: &[u32], proving: bool) -> Result<ParamSet> {
        let top = ks.iter().copied().max().context("no circuit sizes")?;
        if ks.iter().any(|&k| k == 0 || k > MAX_K) {
            bail!("parameters for circuit sizes {ks:?}: each k must be in 1..={MAX_K}");
        }
        let t = Instant::now();
        let set = match scheme {
            Scheme::Ipa => self.ipa(ks, top)?,
            Scheme::Kzg => {
                let mut set = ParamSet::new(self.kzg(top)?);
                set.ensure(ks)?;
                set
            }
        };
        let mut sizes = ks.to_vec();
        sizes.sort_unstable();
        sizes.dedup();
        if proving {
            for &k in &sizes {
                veil_core::prove::prepare(set.get(k)?)?;
            }
        }
        self.note(&format!("parameters for k = {sizes:?} ready in {:.1} s", t.elapsed().as_secs_f64()));
        Ok(set)
    }

    fn ipa(&self, ks: &[u32], top: u32) -> Result<ParamSet> {
        let mut wanted = ks.to_vec();
        // A corrupt or foreign file would fail the load: set it aside and make the size again.
        for k in 1..=MAX_K {
            let path = self.file(Scheme::Ipa, k);
            if path.exists() && check_file(Scheme::Ipa, k, &path).is_err() {
                self.note(&format!("warning: {} is not valid parameters; moving it aside", path.display()));
                std::fs::rename(&path, path.with_extension("params.bad"))
                    .with_context(|| format!("moving {} aside", path.display()))?;
            }
        }
        // Cutting down a cached larger set costs a fraction of generating the size from scratch.
        let larger = (top + 1..=MAX_K).find(|&k| self.file(Scheme::Ipa, k).exists());
        match (self.file(Scheme::Ipa, top).exists(), larger) {
            (true, _) => {}
            (false, Some(k)) => {
                self.note(&format!("deriving IPA parameters for 2^{top} rows from the cached 2^{k}"));
                wanted.push(k);
            }
            (false, None) => self.note(&format!(
                "generating IPA parameters for 2^{top} rows (once per machine; cached in {})",
                self.dir.display()
            )),
        }
        let set = ParamSet::load_or_create(&self.dir, &wanted)
            .with_context(|| format!("parameters cache {}", self.dir.display()))?;
        Ok(set)
    }

    fn kzg(&self, k: u32) -> Result<Params> {
        if let Some(ptau) = &self.srs {
            return self.ceremony(ptau, k);
        }
        let path = self.file(Scheme::Kzg, k);
        if let Some(p) = self.cached_kzg(k, &path) {
            return Ok(p);
        }
        self.note(&format!("generating the insecure test KZG SRS for 2^{k} rows (cached in {})", self.dir.display()));
        let params = Params::insecure_kzg_for_tests(k, INSECURE_KZG_SEED);
        if let Err(e) = self.store(&path, &params) {
            self.note(&format!("warning: could not cache parameters in {}: {e:#}", self.dir.display()));
        }
        Ok(params)
    }

    /// KZG parameters for `2^k` rows cut from the ceremony file `ptau`, checked when first cut
    /// ([`srs::kzg_from_ptau`]) and cached under the file's identifier.
    fn ceremony(&self, ptau: &Path, k: u32) -> Result<Params> {
        let open =
            || std::fs::File::open(ptau).with_context(|| format!("opening the ceremony file {}", ptau.display()));
        let id = srs::ptau_id(std::io::BufReader::new(open()?))
            .with_context(|| format!("reading the ceremony file {}", ptau.display()))?;
        let path = self.ceremony_file(&id, k);
        if let Some(p) = self.cached_kzg(k, &path) {
            return Ok(p);
        }
        self.note(&format!(
            "cutting the KZG SRS for 2^{k} rows from {} and checking it (once; cached in {})",
            ptau.display(),
            self.dir.display()
        ));
        let params = srs::kzg_from_ptau(std::io::BufReader::new(open()?), k)
            .with_context(|| format!("the ceremony file {}", ptau.display()))?;
        if let Err(e) = self.store(&path, &params) {
            self.note(&format!("warning: could not cache parameters in {}: {e:#}", self.dir.display()));
        }
        Ok(params)
    }

    /// KZG parameters for `2^k` rows cached at `path`, if the file is there and reads as such.
    fn cached_kzg(&self, k: u32, path: &Path) -> Option<Params> {
        if !path.exists() {
            return None;
        }
        let read =
            check_file(Scheme::Kzg, k, path).and_then(|()| Ok(Params::from_bytes(Scheme::Kzg, &std::fs::read(path)?)?));
        read.map_err(|e| self.note(&format!("ignoring {}: {e:#}", path.display()))).ok()
    }

    fn store(&self, path: &Path, params: &Params) -> Result<()> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let tmp = path.with_extension(format!("params.tmp{}", std::process::id()));
        let write = || -> Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&params.to_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
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

/// Checks a cached file's header and length without parsing it.
fn check_file(scheme: Scheme, k: u32, path: &Path) -> Result<()> {
    let len = std::fs::metadata(path)?.len();
    let mut header = [0u8; 4];
    std::fs::File::open(path)?.read_exact(&mut header)?;
    if len != expected_len(scheme, k) || header != k.to_le_bytes() {
        bail!("not parameters for 2^{k} rows ({len} bytes)");
    }
    Ok(())
}

/// The loud warning printed whenever the insecure test SRS is used.
pub const INSECURE_KZG_WARNING: &str = "\
WARNING: KZG with an INSECURE test SRS. Its secret comes from a public seed, so anyone can forge proofs \
that verify against this model. Use it for tests and benchmarks only, never to convince anyone of anything.";

/// Refuses KZG without a ceremony file (`--srs`) or `--insecure-test-srs`, and `--srs` or
/// `--insecure-test-srs` for IPA; prints the warning when the insecure SRS is acknowledged.
fn check_scheme(scheme: Scheme, setup: &Setup) -> Result<()> {
    match scheme {
        Scheme::Ipa if setup.srs.is_some() || setup.insecure_test_srs => {
            bail!("--srs and --insecure-test-srs are for KZG models; this one uses IPA (no setup to supply)")
        }
        Scheme::Ipa => {}
        Scheme::Kzg if setup.srs.is_some() => {}
        Scheme::Kzg if setup.insecure_test_srs => eprintln!("{INSECURE_KZG_WARNING}"),
        Scheme::Kzg => bail!(
            "this model uses KZG: pass --srs FILE.ptau, the powers-of-tau ceremony file it was compiled with \
             (or --insecure-test-srs for the insecure test SRS)"
        ),
    }
    Ok(())
}
