//! Process settings the `veil` binary makes: what a closed pipe does, and how the C allocator returns
//! memory while proving. Both are process-wide, so they belong to the binary, not to the libraries.

/// Allocations from this size up get their own memory mapping, returned to the system when freed.
///
/// glibc otherwise raises its mapping threshold each time a large block is freed (up to 32 MiB), after which
/// the prover's column-sized vectors (8 MiB at `k = 18`) come from heap arenas that keep freed memory: the
/// resident set then ends far above what is live. A fixed threshold keeps peak RSS near the heap peak
/// (the age model's first slice: 2.39 GiB → 1.96 GiB; 2.03 GiB with a 4 MiB threshold; proving time within
/// noise).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: libc::c_int = 1 << 20;

/// Restores the default disposition of SIGPIPE, as C command-line tools have it, so that
/// `veil inspect model.onnx | head` ends quietly instead of panicking on a closed stdout. Call first thing
/// in `main`.
#[allow(unsafe_code)]
pub fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: `signal` with `SIG_DFL` installs no handler; it runs before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Makes freed large blocks go back to the system (see [`MMAP_THRESHOLD_BYTES`]). Call before proving or
/// key generation; [`keep_freed_blocks`] undoes it for float inference, whose buffers would otherwise pay a
/// fresh mapping each time (age-v1: 6 ms → 14 ms).
#[allow(unsafe_code)]
pub fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator parameters, under glibc's main-arena lock; no allocation is in
    // flight on another thread when the commands call it (candle's worker threads, if any, are idle).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    }
}

/// Serves large blocks from the heap again (glibc's largest mapping threshold, 32 MiB), for timing float
/// inference after proving.
#[allow(unsafe_code)]
pub fn keep_freed_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: as in `return_large_blocks`; the prover's threads are done.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
    }
}
