//! Keeping resident memory small on a Pi. glibc gives each thread that allocates
//! its own malloc arena and keeps freed memory around; with four threads that is
//! a megabyte or two of a daemon that needs a few. One arena for the whole process
//! (we allocate little and rarely contend) and a trim when idle keep it down.
//! Code pages are left to the kernel: it reclaims clean pages by itself when
//! memory is short, and paging them out on a timer would only re-read them from
//! the SD card. Elsewhere (musl, other systems) these are no-ops.

/// Call first thing in `main`, before any thread starts.
pub fn use_one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Gives freed heap pages back to the kernel; for idle moments.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only returns free pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
