//! Process settings the `veil` binary makes before any work: how the C allocator returns memory, and what a
//! closed pipe does. Both are process-wide, so they belong to the binary, not to the libraries.

/// Allocations from this size up get their own memory mapping, returned to the system when freed.
///
/// glibc otherwise raises its mapping threshold each time a large block is freed (up to 32 MiB), after which
/// the prover's column-sized vectors (8 MiB at `k = 18`) come from heap arenas that keep freed memory: the
/// resident set then ends far above what is live. A fixed threshold keeps peak RSS at the heap peak
/// (measured on the age model's first slice: 2.39 GiB → 1.96 GiB, proving time within noise).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: libc::c_int = 1 << 20;

/// Applies the settings; call first thing in `main`, before any thread starts.
#[allow(unsafe_code)]
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator parameters; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    }
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE, as C command-line tools have it, so that
    // `veil inspect model.onnx | head` ends quietly instead of panicking on a closed stdout.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
