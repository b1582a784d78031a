//! Keeping resident memory small on a Pi. glibc gives each thread that allocates
//! its own malloc arena and keeps freed memory around; with four threads that is
//! a megabyte or two of a daemon that needs a few. One arena for the whole process
//! (we allocate little and rarely contend) and a trim when idle keep it down.
//! Elsewhere (musl, other systems) these are no-ops.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::ffi::c_int;

    // From glibc's <malloc.h>.
    const M_ARENA_MAX: c_int = -8;

    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
        fn malloc_trim(pad: usize) -> c_int;
    }

    pub fn use_one_arena() {
        // SAFETY: mallopt only changes allocator tuning; called before any thread starts.
        unsafe {
            mallopt(M_ARENA_MAX, 1);
        }
    }

    pub fn release_free_memory() {
        // SAFETY: malloc_trim is thread-safe and only returns free pages to the kernel.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Call first thing in `main`, before any thread starts.
pub fn use_one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    glibc::use_one_arena();
}

/// Gives freed heap pages back to the kernel; for idle moments.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    glibc::release_free_memory();
}
