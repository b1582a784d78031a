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

    // From <sys/mman.h>.
    const MADV_PAGEOUT: c_int = 21;

    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
        fn malloc_trim(pad: usize) -> c_int;
        fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: c_int) -> c_int;
    }

    /// Asks the kernel to page out the clean, read-only pages of our own
    /// executable that start-up touched (and fault-around mapped in bulk); the
    /// few the idle loop needs come back on use. Harmless where unsupported.
    pub fn page_out_code() {
        let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
            return;
        };
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
            return;
        };
        let exe = exe.to_string_lossy();
        for line in maps.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(range), Some(perms), Some(path)) =
                (fields.first(), fields.get(1), fields.get(5))
            else {
                continue;
            };
            if *path != exe || perms.contains('w') {
                continue;
            }
            let Some((start, end)) = range.split_once('-') else {
                continue;
            };
            let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) else {
                continue;
            };
            // SAFETY: the range is a whole read-only mapping of this process;
            // MADV_PAGEOUT only drops clean pages, which fault back in on use.
            unsafe {
                madvise(start as *mut std::ffi::c_void, end - start, MADV_PAGEOUT);
            }
        }
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

/// Lets the kernel take back the executable's pages that only start-up used.
pub fn page_out_code() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    glibc::page_out_code();
}
