//! `tapestats`: each SCSI tape drive's I/O counts, bytes and times from
//! `/sys/class/scsi_tape/st<N>/stats/`, as node_exporter 1.5 (procfs 0.8) reads and reports
//! them.

use super::{Error, Kind, Node, Out, missing_is_no_data};

/// The statistics reported: (file, family, help, type, scale). Times are nanoseconds.
const STATS: [(&str, &str, &str, Kind, f64); 10] = [
    (
        "in_flight",
        "node_tape_io_now",
        "The number of I/Os currently outstanding to this device.",
        Kind::Gauge,
        1.0,
    ),
    (
        "io_ns",
        "node_tape_io_time_seconds_total",
        "The amount of time spent waiting for all I/O to complete (including read and write). This includes tape movement commands such as seeking between file or set marks and implicit tape movement such as when rewind on close tape devices are used.",
        Kind::Counter,
        0.000000001,
    ),
    (
        "other_cnt",
        "node_tape_io_others_total",
        "The number of I/Os issued to the tape drive other than read or write commands. The time taken to complete these commands uses the following calculation io_time_seconds_total-read_time_seconds_total-write_time_seconds_total",
        Kind::Counter,
        1.0,
    ),
    (
        "read_byte_cnt",
        "node_tape_read_bytes_total",
        "The number of bytes read from the tape drive.",
        Kind::Counter,
        1.0,
    ),
    (
        "read_cnt",
        "node_tape_reads_completed_total",
        "The number of read requests issued to the tape drive.",
        Kind::Counter,
        1.0,
    ),
    (
        "read_ns",
        "node_tape_read_time_seconds_total",
        "The amount of time spent waiting for read requests to complete.",
        Kind::Counter,
        0.000000001,
    ),
    (
        "resid_cnt",
        "node_tape_residual_total",
        "The number of times during a read or write we found the residual amount to be non-zero. This should mean that a program is issuing a read larger thean the block size on tape. For write not all data made it to tape.",
        Kind::Counter,
        1.0,
    ),
    (
        "write_byte_cnt",
        "node_tape_written_bytes_total",
        "The number of bytes written to the tape drive.",
        Kind::Counter,
        1.0,
    ),
    (
        "write_cnt",
        "node_tape_writes_completed_total",
        "The number of write requests issued to the tape drive.",
        Kind::Counter,
        1.0,
    ),
    (
        "write_ns",
        "node_tape_write_time_seconds_total",
        "The amount of time spent waiting for write requests to complete.",
        Kind::Counter,
        0.000000001,
    ),
];

/// `st<N>`: the drive itself; `nst<N>` and the `a`/`l`/`m` mode devices repeat its counters.
fn is_drive(name: &str) -> bool {
    name.strip_prefix("st")
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

pub(super) fn tapestats(n: &Node, out: &mut Out) -> Result<(), Error> {
    let dir = n.sys("class/scsi_tape");
    let mut drives = Vec::new();
    for e in std::fs::read_dir(&dir).map_err(|e| missing_is_no_data(&dir, e))? {
        let e = e.map_err(|source| Error::Read {
            path: dir.clone(),
            source,
        })?;
        let name = e.file_name().to_string_lossy().into_owned();
        // `--collector.tapestats.ignored-devices`, matched against the drive's name.
        if is_drive(&name) && !n.opts.tapestats_ignored.is_match(&name) {
            drives.push((name, e.path()));
        }
    }
    drives.sort();
    // All drives are read before any is written: one that cannot be read leaves the
    // collector with nothing, as in node_exporter.
    let mut tapes = Vec::with_capacity(drives.len());
    for (name, path) in drives {
        // A drive without `stats/` is no data for the whole collector: procfs hands that
        // error up as it is, and node_exporter takes it for an absent class.
        let stats = path.join("stats");
        let mut files = Vec::new();
        for e in std::fs::read_dir(&stats).map_err(|e| missing_is_no_data(&stats, e))? {
            let e = e.map_err(|source| Error::Read {
                path: stats.clone(),
                source,
            })?;
            files.push((e.file_name().to_string_lossy().into_owned(), e.path()));
        }
        files.sort();
        // Every file is read, whatever it is; a statistic without a file counts 0.
        let mut values = [0u64; STATS.len()];
        for (file, p) in files {
            let v = super::sysread(&p).map_err(|source| Error::Read {
                path: p.clone(),
                source,
            })?;
            if let Some(i) = STATS.iter().position(|s| s.0 == file) {
                // node_exporter 1.5 crashes on a count that is not a number; failing the
                // collector is the nearest a scrape can come.
                values[i] =
                    super::fibrechannel::parse_uint_base0(&v).ok_or_else(|| Error::Parse {
                        path: p,
                        what: format!("{v:?} is not an unsigned number"),
                    })?;
            }
        }
        tapes.push((name, values));
    }
    for (name, values) in &tapes {
        for ((_, family, help, kind, scale), v) in STATS.iter().zip(values) {
            out.add(family, help, *kind, &[("device", name)], *v as f64 * scale);
        }
    }
    Ok(())
}
