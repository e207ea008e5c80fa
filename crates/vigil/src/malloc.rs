//! The C allocator's settings: the mmap threshold for every command, one arena for the agent,
//! and when freed memory is handed back to the kernel.
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
    let took = t.elapsed();
    if let Some(free) = resident_free() {
        LEFT_AFTER_RELEASE.store(free, std::sync::atomic::Ordering::Relaxed);
    }
    took
}

/// Freed memory resident in the allocator's arenas worth handing back: at least this much
/// more than a release last left...
const RELEASE_AT_LEAST: u64 = 64 << 20;
/// ...and at least this fraction of what is in use (a large head frees and reuses more).
const RELEASE_FRACTION: u64 = 4;

/// What looked resident and free right after the last [`release_free`]: what a release
/// cannot hand back (free pieces smaller than a page, pages shared with live chunks,
/// anonymous memory that is not malloc's), so it is not counted again each minute.
static LEFT_AFTER_RELEASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Whether the allocator holds enough freed memory resident to be worth a [`release_free`].
/// Reads `/proc` and walks malloc's arenas: call it off the async workers.
///
/// A query's working memory (a range query over many native histograms decodes them whole)
/// is freed on the query pool's threads, whose arenas keep it: measured with the
/// `native_histograms` benchmark, 311 MB resident after its queries against 70 MB before,
/// where Prometheus's collector gave its back. Checked once a minute beside storage
/// maintenance; what is resident and free is the anonymous memory not in use by malloc's
/// chunks (heap or mapped), read from `/proc/self/status` and `mallinfo2`.
pub fn worth_releasing() -> bool {
    match (rss_anon(), in_use()) {
        (Some(anon), Some(used)) => worth(
            anon,
            used,
            LEFT_AFTER_RELEASE.load(std::sync::atomic::Ordering::Relaxed),
        ),
        _ => false,
    }
}

/// [`worth_releasing`] on figures: `anon` resident anonymous bytes, `used` bytes malloc has
/// handed out and not had back, `left` what the last release could not hand back.
fn worth(anon: u64, used: u64, left: u64) -> bool {
    let free = anon.saturating_sub(used);
    free >= left.saturating_add(RELEASE_AT_LEAST) && free >= used / RELEASE_FRACTION
}

/// Resident anonymous memory not in malloc's chunks in use.
fn resident_free() -> Option<u64> {
    Some(rss_anon()?.saturating_sub(in_use()?))
}

/// Bytes malloc has handed out and not had back: its arenas' chunks in use and its mapped
/// chunks (all arenas).
fn in_use() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics (glibc 2.33 and later).
        let m = unsafe { libc::mallinfo2() };
        Some(m.uordblks as u64 + m.hblkhd as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// This process's resident anonymous memory, in bytes.
fn rss_anon() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_is_worth_it_past_64_mib_and_a_quarter_of_what_is_used() {
        const MIB: u64 = 1 << 20;
        assert!(!worth(100 * MIB, 40 * MIB, 0), "60 MiB free");
        assert!(worth(110 * MIB, 40 * MIB, 0), "70 MiB free");
        assert!(
            !worth(1100 * MIB, 1000 * MIB, 0),
            "100 MiB free of 1 GiB used"
        );
        assert!(
            worth(1300 * MIB, 1000 * MIB, 0),
            "300 MiB free of 1 GiB used"
        );
        assert!(
            !worth(10 * MIB, 40 * MIB, 0),
            "less resident than used (swapped out)"
        );
        // What the last release left is not counted again.
        assert!(
            !worth(110 * MIB, 40 * MIB, 10 * MIB),
            "70 MiB free, 10 left last time"
        );
        assert!(
            worth(120 * MIB, 40 * MIB, 10 * MIB),
            "80 MiB free, 10 left last time"
        );
    }

    /// Freed small allocations below one still held stay resident (glibc gives back only a
    /// heap's free top), the check sees them, and a release hands them back. Resident memory
    /// and malloc's figures are the process's: the test runs itself again, alone in a
    /// process of its own.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_memory_below_a_live_allocation_is_seen_and_released() {
        const ALONE: &str = "VIGIL_TEST_MALLOC_ALONE";
        if std::env::var_os(ALONE).is_some() {
            return release_alone();
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "malloc::tests::freed_memory_below_a_live_allocation_is_seen_and_released",
                "--nocapture",
            ])
            .env(ALONE, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn release_alone() {
        let mut blocks: Vec<Vec<u8>> = (0..64 * 1024).map(|i| vec![i as u8 | 1; 4096]).collect();
        let pin = vec![1u8; 4096];
        let before = rss_anon().unwrap();
        blocks.clear();
        blocks.shrink_to_fit();
        assert!(
            worth_releasing(),
            "256 MiB freed: resident {} MiB, in use {} MiB",
            rss_anon().unwrap() >> 20,
            in_use().unwrap() >> 20
        );
        release_free();
        let after = rss_anon().unwrap();
        assert!(
            after + (192 << 20) < before,
            "resident {} MiB before the release, {} MiB after",
            before >> 20,
            after >> 20
        );
        // What the release left is not worth another.
        assert!(!worth_releasing());
        drop(pin);
    }
}
