//! The `nfsd` collector: NFS server statistics from `/proc/net/rpc/nfsd`, as node_exporter 1.5
//! reads them through procfs (the same families, help texts, method names and checks; a line
//! the file does not have gives zeros, as procfs leaves its fields unset).

use super::nfs::{V2, V3, counts, procedures};
use super::out::Out;
use super::{Error, Node, read_optional};

/// `proc4ops` counts node_exporter reports, by position after the line's count (procfs's
/// `V4Ops` fields; positions 0-2 are unused or reserved, 23 and 24 are PUTPUBFH and
/// PUTROOTFH, which it does not report, and counts past 37 are not read).
const V4_OPS: [(usize, &str); 33] = [
    (3, "Access"),
    (4, "Close"),
    (5, "Commit"),
    (6, "Create"),
    (7, "DelegPurge"),
    (8, "DelegReturn"),
    (9, "GetAttr"),
    (10, "GetFH"),
    (11, "Link"),
    (12, "Lock"),
    (13, "Lockt"),
    (14, "Locku"),
    (15, "Lookup"),
    (16, "LookupRoot"),
    (17, "Nverify"),
    (18, "Open"),
    (19, "OpenAttr"),
    (20, "OpenConfirm"),
    (21, "OpenDgrd"),
    (22, "PutFH"),
    (25, "Read"),
    (26, "ReadDir"),
    (27, "ReadLink"),
    (28, "Remove"),
    (29, "Rename"),
    (30, "Renew"),
    (31, "RestoreFH"),
    (32, "SaveFH"),
    (33, "SecInfo"),
    (34, "SetAttr"),
    (35, "Verify"),
    (36, "Write"),
    (37, "RelLockOwner"),
];

/// The file's counts, every one 0 until its line is read.
#[derive(Default)]
struct Stats {
    /// Reply cache: hits, misses, nocache.
    rc: [u64; 3],
    /// File handles: stale, then four the kernel no longer counts.
    fh: [u64; 5],
    /// Bytes read, written.
    io: [u64; 2],
    /// Threads running, times all were busy (the rest of the line, a histogram the kernel
    /// stopped keeping, is not read).
    th: [u64; 2],
    /// Read-ahead cache: size, ten histogram buckets, not found (gone from newer kernels).
    ra: [u64; 12],
    /// Packets: all, UDP, TCP; TCP connections.
    net: [u64; 4],
    /// RPCs, bad ones, bad format, bad auth, bad client.
    rpc: [u64; 5],
    v2: Vec<u64>,
    v3: Vec<u64>,
    v4_ops: Vec<u64>,
}

fn parse(text: &str) -> Result<Stats, String> {
    let mut s = Stats {
        v2: vec![0; V2.len()],
        v3: vec![0; V3.len()],
        v4_ops: vec![0; 38],
        ..Default::default()
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 2 {
            return Err(format!("invalid NFSd metric line {line:?}"));
        }
        let numbers = match f[0] {
            "th" if f.len() < 3 => return Err(format!("invalid NFSd th metric line {line:?}")),
            "th" => &f[1..3],
            _ => &f[1..],
        };
        let v = counts(numbers, "NFSd")?;
        let bad = |what: &str| format!("errors parsing NFSd metric line: invalid {what} line");
        match f[0] {
            "rc" => s.rc = v.try_into().map_err(|_| bad("ReplyCache"))?,
            "fh" => s.fh = v.try_into().map_err(|_| bad("FileHandles,"))?,
            "io" => s.io = v.try_into().map_err(|_| bad("InputOutput"))?,
            "th" => s.th = v.try_into().map_err(|_| bad("Threads"))?,
            "ra" => s.ra = v.try_into().map_err(|_| bad("ReadAheadCache"))?,
            "net" => s.net = v.try_into().map_err(|_| bad("Network"))?,
            "rpc" => s.rpc = v.try_into().map_err(|_| bad("ServerRPC"))?,
            "proc2" => s.v2 = procedures(&v, V2.len(), 0).ok_or_else(|| bad("V2Stats"))?,
            "proc3" => s.v3 = procedures(&v, V3.len(), 0).ok_or_else(|| bad("V3Stats"))?,
            // NULL and COMPOUND: checked, not reported.
            "proc4" => {
                procedures(&v, 2, 0)
                    .filter(|c| c.len() == 2)
                    .ok_or_else(|| bad("V4Stats"))?;
            }
            "proc4ops" => s.v4_ops = procedures(&v, 39, 0).ok_or_else(|| bad("V4Ops"))?,
            other => return Err(format!("unknown NFSd metric line {other:?}")),
        }
    }
    Ok(s)
}

/// `/proc/net/rpc/nfsd`; a node without it (no NFS server module) has no data.
pub fn nfsd(n: &Node, out: &mut Out) -> Result<(), Error> {
    let path = n.proc("net/rpc/nfsd");
    let text = read_optional(&path)?;
    let s = parse(&text).map_err(|what| Error::Parse {
        path: path.clone(),
        what: format!("failed to retrieve nfsd stats: {what}"),
    })?;
    let counters: [(&str, &str, u64); 9] = [
        (
            "node_nfsd_reply_cache_hits_total",
            "Total number of NFSd Reply Cache hits (client lost server response).",
            s.rc[0],
        ),
        (
            "node_nfsd_reply_cache_misses_total",
            "Total number of NFSd Reply Cache an operation that requires caching (idempotent).",
            s.rc[1],
        ),
        (
            "node_nfsd_reply_cache_nocache_total",
            "Total number of NFSd Reply Cache non-idempotent operations (rename/delete/…).",
            s.rc[2],
        ),
        (
            "node_nfsd_file_handles_stale_total",
            "Total number of NFSd stale file handles",
            s.fh[0],
        ),
        (
            "node_nfsd_disk_bytes_read_total",
            "Total NFSd bytes read.",
            s.io[0],
        ),
        (
            "node_nfsd_disk_bytes_written_total",
            "Total NFSd bytes written.",
            s.io[1],
        ),
        (
            "node_nfsd_read_ahead_cache_not_found_total",
            "Total number of NFSd read ahead cache not found.",
            s.ra[11],
        ),
        (
            "node_nfsd_connections_total",
            "Total number of NFSd TCP connections.",
            s.net[3],
        ),
        (
            "node_nfsd_server_rpcs_total",
            "Total number of NFSd RPCs.",
            s.rpc[0],
        ),
    ];
    for (name, help, v) in counters {
        out.counter(name, help, &[], v as f64);
    }
    out.gauge(
        "node_nfsd_server_threads",
        "Total number of NFSd kernel threads that are running.",
        &[],
        s.th[0] as f64,
    );
    out.gauge(
        "node_nfsd_read_ahead_cache_size_blocks",
        "How large the read ahead cache is in blocks.",
        &[],
        s.ra[0] as f64,
    );
    for (proto, v) in [("udp", s.net[1]), ("tcp", s.net[2])] {
        out.counter(
            "node_nfsd_packets_total",
            "Total NFSd network packets (sent+received) by protocol type.",
            &[("proto", proto)],
            v as f64,
        );
    }
    for (error, v) in [("fmt", s.rpc[2]), ("auth", s.rpc[3]), ("cInt", s.rpc[4])] {
        out.counter(
            "node_nfsd_rpc_errors_total",
            "Total number of NFSd RPC errors by error type.",
            &[("error", error)],
            v as f64,
        );
    }
    // NULL (position 0) is not reported for versions 2 and 3.
    let v2 = V2.iter().zip(&s.v2).skip(1);
    let v3 = V3.iter().zip(&s.v3).skip(1);
    let v4 = V4_OPS.iter().map(|(i, m)| (m, &s.v4_ops[*i]));
    for (proto, method, v) in v2
        .map(|(m, v)| ("2", m, v))
        .chain(v3.map(|(m, v)| ("3", m, v)))
        .chain(v4.map(|(m, v)| ("4", m, v)))
    {
        out.counter(
            "node_nfsd_requests_total",
            "Total number NFSd Requests by method and protocol.",
            &[("proto", proto), ("method", method)],
            *v as f64,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_checked_as_procfs_checks_them() {
        let ok = "rc 0 6 18622\nfh 3 0 0 0 0\nio 157286400 72864\nth 8 0 0.000 0.000\nnet 18628 11 18617 6\nrpc 18628 4 1 2 1\nproc2 18 2 69 0 0 4410 0 0 0 0 0 0 0 0 0 0 0 99 2\nproc3 22 2 112 0 2719 111 0 0 0 0 0 0 0 0 0 0 0 27 216 0 2 1 0\nproc4 2 2 10853\n";
        let s = parse(ok).unwrap();
        assert_eq!(
            (s.rc, s.fh[0], s.io, s.th),
            ([0, 6, 18622], 3, [157286400, 72864], [8, 0])
        );
        assert_eq!((s.net, s.rpc), ([18628, 11, 18617, 6], [18628, 4, 1, 2, 1]));
        assert_eq!((s.v2[17], s.v3[3]), (2, 2719));
        // No ra line (newer kernels) and no proc4ops: zeros.
        assert_eq!((s.ra, s.v4_ops.len()), ([0; 12], 38));
        let ops = format!(
            "proc4ops 40 {}\n",
            (0..40).map(|i| i.to_string()).collect::<Vec<_>>().join(" ")
        );
        assert_eq!(parse(&ops).unwrap().v4_ops[37], 37);
        for bad in [
            "rc 1 2\n",
            "rc 1 2 3 4\n",
            "fh 1 2 3 4 5 6\n",
            "th 8\n",
            "ra 1 2 3\n",
            "proc2 19 1\n",
            "proc3 10 1 2 3 4 5 6 7 8 9 10\n",
            "proc4 3 2 10853 1\n",
            "proc4ops 38 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38\n",
            "xyz 1 2\n",
            "\n",
            "rc x 1 2\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
