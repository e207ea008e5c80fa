//! The C allocator's settings: the mmap threshold for every command, one arena for the agent.
//!
//! glibc gives threads their own malloc arenas (up to eight per core) so that allocations do
//! not contend. Memory freed in one arena is not reused by threads of another, and the agent's
//! work (scrapes appending to the WAL, remote write reading it) allocates little at once but
//! on many threads: measured on the remote write benchmark (100k series), one arena held the
//! agent at 84 MB RSS where the default took 93 MB, at the same CPU per sample.

/// Limit malloc to one arena, unless the environment already says how many
/// (`MALLOC_ARENA_MAX`, or `glibc.malloc.arena_max` in `GLIBC_TUNABLES`). Call before any
/// thread is started.
pub fn one_arena() {
    // Every glibc takes a positive arena count.
    set_unless_in_environment("MALLOC_ARENA_MAX", "arena_max", Param::ArenaMax, 1);
}

/// The glibc malloc parameters vigil sets.
enum Param {
    ArenaMax,
    MmapThreshold,
}

/// Set `param` to `value` with `mallopt`, unless the environment already sets it: the
/// variable `var`, or a `GLIBC_TUNABLES` entry naming `tunable`. Called before any thread
/// is started, as `mallopt` requires.
fn set_unless_in_environment(var: &str, tunable: &str, param: Param, value: i32) {
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if std::env::var_os(var).is_some() || tunables.contains(tunable) {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let param = match param {
            Param::ArenaMax => libc::M_ARENA_MAX,
            Param::MmapThreshold => libc::M_MMAP_THRESHOLD,
        };
        // SAFETY: mallopt only sets an allocator parameter, before other threads exist; a
        // value it does not take is refused (it returns 0 and changes nothing).
        unsafe {
            libc::mallopt(param, value);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = (param, value);
}

/// Allocations of at least this size are mapped from the kernel (when no free heap chunk
/// fits them) and unmapped when freed.
const MMAP_THRESHOLD: i32 = 8 << 20;

/// Fix glibc's mmap threshold at [`MMAP_THRESHOLD`], unless the environment already sets one
/// (`MALLOC_MMAP_THRESHOLD_`, or `glibc.malloc.mmap_threshold` in `GLIBC_TUNABLES`). Call
/// before any thread is started.
///
/// glibc's threshold starts at 128 KiB and rises to the size of each mapped block freed
/// (and its trim threshold to twice that), so after the first large scrape body was freed (a
/// 100,000-series target's is 11.5 MB) later bodies came from the arenas of whichever threads
/// ran the scrapes, and those arenas kept the pages. Fixed, the trim threshold stays at its
/// 128 KiB default too: the free top of a heap goes back to the kernel sooner. Measured with
/// the `scrape_cpu` benchmark (100,000 series, 2026-12-07): 125-129 MB RSS with the moving
/// threshold, 102-104 MB fixed at 8 MiB but with the body's pages mapped and zeroed every
/// scrape (3,680 page faults a scrape against 170). Fixed at 1 MiB, the smaller buffers a
/// scrape grows were mapped and unmapped every time too: 91 MB, 0.062 s of CPU per scrape
/// where the other builds measured 0.033-0.053 s. Scrape bodies are now kept for reuse
/// (`vigil_scrape::body_pool`), which spares them those faults; the threshold still hands
/// other large buffers back when they are freed. Setting any of glibc's malloc variables
/// (`MALLOC_TRIM_THRESHOLD_`, ...) without this one still gets it.
pub fn fixed_mmap_threshold() {
    // mallopt refuses a value above its limit (32 MiB on 64-bit glibc, 512 KiB on 32-bit),
    // where the moving threshold simply stays.
    set_unless_in_environment(
        "MALLOC_MMAP_THRESHOLD_",
        "mmap_threshold",
        Param::MmapThreshold,
        MMAP_THRESHOLD,
    );
}

/// Hand the pages of freed memory back to the kernel, returning how long that took.
///
/// glibc keeps freed memory in its arenas for reuse and returns to the kernel only what lies
/// at the top of a heap. A head cut frees a block's worth of samples from the middle of the
/// heap, and its own work (the block's index, the checkpoint) allocates on whichever pool
/// thread runs it, so each cut left its peak behind: measured with the `scale` benchmark at
/// 2M series, anonymous memory rose from 1.6 to 2.5 GB at the first cut and to 3.1 GB at the
/// second, and 1.35 GB of that was free memory a `malloc_trim` gave back.
pub fn release_free() -> std::time::Duration {
    let t = std::time::Instant::now();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
    t.elapsed()
}
