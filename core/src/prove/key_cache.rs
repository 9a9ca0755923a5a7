//! An on-disk cache of proving keys.
//!
//! A slice's proving key follows from its layout and its verifying key alone, and deriving it is a fixed
//! share of every proof (about 3 s of gender-v1's 28 s on a 2-core machine: the layout, the permutation, and
//! inverse FFTs of every fixed and permutation column). A device therefore derives each key once and keeps
//! it: about 300 MB at `k = 17`, 600 MB at `k = 18`.
//!
//! A key is stored as `pk-{verifying key digest}.veilpk`: a [`HEADER_LEN`]-byte header (magic, format version,
//! the halo2 build that wrote it, the verifying key's digest, the payload's length and SHA-256), then halo2's
//! raw proving-key bytes. halo2's reader panics on malformed bytes and its raw format skips every check, so a
//! file reaches it only when its header, length and hash all match; any other file is a miss, and the next
//! store replaces it. A key read back must also carry the verifying key it is filed under.

use halo2_proofs::halo2curves::bn256::G1Affine;
use halo2_proofs::plonk::ProvingKey;
use halo2_proofs::SerdeFormat;
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use veil_verifier::backend::vk_bytes;
use veil_verifier::circuit::{SliceParams, SliceShape};
use veil_verifier::Digest;

const MAGIC: &[u8; 8] = b"VEILPK\0\0";
/// Bumped whenever a relation's row layout changes: a cached key holds the fixed columns and copy
/// constraints of the layout that made it, so a key made before the change, though filed under the same
/// verifying key, no longer fits the circuits this build lays out (2: separable max pooling; 3: four maxima
/// and four packing lanes a wide row, two Poseidon lanes, commitments in two halves). A key of
/// another version is a miss, and is derived again (the compiled model's own version changes with it, so a
/// model compiled with the older layout is refused before that: `compiled::VERSION`).
const VERSION: u32 = 3;
/// The raw format is halo2's in-memory layout, so only the build that wrote a key may read it.
const LAYOUT: &[u8; 16] = b"halo2-axiom0.5.3";
/// Bytes before the payload: magic, version, layout, verifying key digest, payload length, payload SHA-256.
pub const HEADER_LEN: usize = 8 + 4 + 16 + 32 + 8 + 32;
/// Buffer size for streaming a key to and from disk.
const BUFFER: usize = 1 << 20;

/// Proving keys kept in one directory, filed by their verifying key's digest.
#[derive(Clone, Debug)]
pub struct KeyCache {
    dir: PathBuf,
}

impl KeyCache {
    /// A cache in `dir` (created on the first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        KeyCache { dir: dir.into() }
    }

    /// The directory keys are kept in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding the key whose verifying key has digest `vk`.
    pub fn path(&self, vk: &Digest) -> PathBuf {
        self.dir.join(format!("pk-{vk}.veilpk"))
    }

    /// The key filed under `vk` (for the constraint system of `params`), or `None` when there is none or the
    /// file is not a whole, intact key for it.
    pub fn load(&self, vk: &Digest, params: SliceParams) -> Option<ProvingKey<G1Affine>> {
        let mut file = File::open(self.path(vk)).ok()?;
        let mut header = [0u8; HEADER_LEN];
        file.read_exact(&mut header).ok()?;
        let (len, hash) = parse_header(&header, vk)?;
        if file.metadata().ok()?.len() != HEADER_LEN as u64 + len {
            return None;
        }
        let mut hasher = HashingWriter::new(io::sink());
        io::copy(&mut BufReader::with_capacity(BUFFER, &mut file).take(len), &mut hasher).ok()?;
        if hasher.finish().1 != hash {
            return None;
        }
        file.seek(SeekFrom::Start(HEADER_LEN as u64)).ok()?;
        let mut reader = BufReader::with_capacity(BUFFER, file);
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ProvingKey::<G1Affine>::read::<_, SliceShape>(&mut reader, SerdeFormat::RawBytesUnchecked, params)
        }));
        let pk = read.ok()?.ok()?;
        (Digest::of(&vk_bytes(pk.get_vk())) == *vk).then_some(pk)
    }

    /// Files `pk` under its verifying key's digest `vk`, replacing any earlier file. The key is written to a
    /// temporary file and renamed, so a concurrent reader sees the old file or the whole new one.
    pub fn store(&self, vk: &Digest, pk: &ProvingKey<G1Affine>) -> io::Result<()> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(vk);
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp-{}-{unique}", std::process::id()));
        let written = write_key(&tmp, vk, pk).and_then(|()| std::fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }
}

fn write_key(path: &Path, vk: &Digest, pk: &ProvingKey<G1Affine>) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(&[0u8; HEADER_LEN])?;
    // halo2's writer unwraps every write: hand it a writer that never fails and report the first error after.
    let mut sink = FirstError::new(HashingWriter::new(BufWriter::with_capacity(BUFFER, &mut file)));
    pk.write(&mut sink, SerdeFormat::RawBytesUnchecked)?;
    let (hashing, error) = sink.into_parts();
    if let Some(e) = error {
        return Err(e);
    }
    let (mut buffered, hash, len) = hashing.into_parts();
    buffered.flush()?;
    drop(buffered);
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&header(vk, len, &hash))?;
    file.sync_all()
}

fn header(vk: &Digest, len: u64, hash: &[u8; 32]) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    let parts: [&[u8]; 6] = [MAGIC, &VERSION.to_le_bytes(), LAYOUT, vk.as_bytes(), &len.to_le_bytes(), hash];
    let mut at = 0;
    for part in parts {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    out
}

/// The payload's length and hash, when `bytes` is a header of this format for `vk`.
fn parse_header(bytes: &[u8; HEADER_LEN], vk: &Digest) -> Option<(u64, [u8; 32])> {
    let (magic, rest) = bytes.split_at(8);
    let (version, rest) = rest.split_at(4);
    let (layout, rest) = rest.split_at(16);
    let (digest, rest) = rest.split_at(32);
    let (len, hash) = rest.split_at(8);
    let ok = magic == MAGIC && version == VERSION.to_le_bytes() && layout == LAYOUT && digest == vk.as_bytes();
    ok.then(|| (u64::from_le_bytes(len.try_into().unwrap_or_default()), hash.try_into().unwrap_or_default()))
}

/// Passes bytes on while hashing and counting them.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), len: 0 }
    }

    fn finish(self) -> (u64, [u8; 32]) {
        (self.len, self.hasher.finalize().into())
    }

    fn into_parts(self) -> (W, [u8; 32], u64) {
        (self.inner, self.hasher.finalize().into(), self.len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Accepts every write, keeping the inner writer's first error (and dropping what follows it).
struct FirstError<W> {
    inner: W,
    error: Option<io::Error>,
}

impl<W: Write> FirstError<W> {
    fn new(inner: W) -> Self {
        FirstError { inner, error: None }
    }

    fn into_parts(self) -> (W, Option<io::Error>) {
        (self.inner, self.error)
    }
}

impl<W: Write> Write for FirstError<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.error.is_none() {
            if let Err(e) = self.inner.write_all(buf) {
                self.error = Some(e);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
