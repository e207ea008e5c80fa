//! The `nfs` collector: NFS client statistics from `/proc/net/rpc/nfs`, as node_exporter 1.5
//! reads them through procfs (the same families, help texts, method names and checks).

use super::out::Out;
use super::{Error, Node, read_optional};

/// `node_nfs_requests_total`'s `method` values for protocol version 2, in `proc2`'s order
/// after its count (procfs's `V2Stats` field names).
pub(super) const V2: [&str; 18] = [
    "Null", "GetAttr", "SetAttr", "Root", "Lookup", "ReadLink", "Read", "WrCache", "Write",
    "Create", "Remove", "Rename", "Link", "SymLink", "MkDir", "RmDir", "ReadDir", "FsStat",
];

/// Version 3 (`V3Stats`).
pub(super) const V3: [&str; 22] = [
    "Null",
    "GetAttr",
    "SetAttr",
    "Lookup",
    "Access",
    "ReadLink",
    "Read",
    "Write",
    "Create",
    "MkDir",
    "SymLink",
    "MkNod",
    "Remove",
    "RmDir",
    "Rename",
    "Link",
    "ReadDir",
    "ReadDirPlus",
    "FsStat",
    "FsInfo",
    "PathConf",
    "Commit",
];

/// Version 4 (`ClientV4Stats`). Positions 45 and 46 carry the kernel's GETDEVICEINFO and
/// LAYOUTGET counts under each other's names, as procfs of node_exporter 1.5 maps them;
/// counts past the 59th are not read.
const V4: [&str; 59] = [
    "Null",
    "Read",
    "Write",
    "Commit",
    "Open",
    "OpenConfirm",
    "OpenNoattr",
    "OpenDowngrade",
    "Close",
    "Setattr",
    "FsInfo",
    "Renew",
    "SetClientID",
    "SetClientIDConfirm",
    "Lock",
    "Lockt",
    "Locku",
    "Access",
    "Getattr",
    "Lookup",
    "LookupRoot",
    "Remove",
    "Rename",
    "Link",
    "Symlink",
    "Create",
    "Pathconf",
    "StatFs",
    "ReadLink",
    "ReadDir",
    "ServerCaps",
    "DelegReturn",
    "GetACL",
    "SetACL",
    "FsLocations",
    "ReleaseLockowner",
    "Secinfo",
    "FsidPresent",
    "ExchangeID",
    "CreateSession",
    "DestroySession",
    "Sequence",
    "GetLeaseTime",
    "ReclaimComplete",
    "LayoutGet",
    "GetDeviceInfo",
    "LayoutCommit",
    "LayoutReturn",
    "SecinfoNoName",
    "TestStateID",
    "FreeStateID",
    "GetDeviceList",
    "BindConnToSession",
    "DestroyClientID",
    "Seek",
    "Allocate",
    "DeAllocate",
    "LayoutStats",
    "Clone",
];

/// The file's counts, every one 0 until its line is read (a missing line gives zeros).
#[derive(Default)]
struct Stats {
    net: [u64; 4],
    rpc: [u64; 3],
    v2: Vec<u64>,
    v3: Vec<u64>,
    v4: Vec<u64>,
}

/// A `procN` line's counts after its leading count, which must say how many follow and be at
/// least `min`, padded with zeros to `pad_to` (the client's version 4 line: procfs checks only
/// that its count matches).
pub(super) fn procedures(v: &[u64], min: usize, pad_to: usize) -> Option<Vec<u64>> {
    let (&n, rest) = v.split_first()?;
    if n as usize != rest.len() || rest.len() < min {
        return None;
    }
    let mut out = rest.to_vec();
    out.resize(out.len().max(pad_to), 0);
    Some(out)
}

/// A line's counts (fields after its key), each a decimal u64; `file` names the file in the
/// error, as procfs names it ("NFS", "NFSd").
pub(super) fn counts(fields: &[&str], file: &str) -> Result<Vec<u64>, String> {
    fields
        .iter()
        .map(|x| x.parse::<u64>())
        .collect::<Result<Vec<u64>, _>>()
        .map_err(|e| format!("error parsing {file} metric line: {e}"))
}

fn parse(text: &str) -> Result<Stats, String> {
    let mut s = Stats {
        v2: vec![0; V2.len()],
        v3: vec![0; V3.len()],
        v4: vec![0; V4.len()],
        ..Default::default()
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 2 {
            return Err(format!("invalid NFS metric line {line:?}"));
        }
        let v = counts(&f[1..], "NFS")?;
        let bad = |what: &str| format!("errors parsing NFS metric line: invalid {what} line");
        match f[0] {
            "net" => s.net = v.try_into().map_err(|_| bad("Network"))?,
            "rpc" => s.rpc = v.try_into().map_err(|_| bad("RPC"))?,
            "proc2" => s.v2 = procedures(&v, V2.len(), 0).ok_or_else(|| bad("V2Stats"))?,
            "proc3" => s.v3 = procedures(&v, V3.len(), 0).ok_or_else(|| bad("V3Stats"))?,
            "proc4" => {
                s.v4 = procedures(&v, 0, V4.len()).ok_or_else(|| bad("ClientV4Stats"))?;
            }
            other => return Err(format!("unknown NFS metric line {other:?}")),
        }
    }
    Ok(s)
}

/// `/proc/net/rpc/nfs`; a node without it (no NFS client module) has no data.
pub fn nfs(n: &Node, out: &mut Out) -> Result<(), Error> {
    let path = n.proc("net/rpc/nfs");
    let text = read_optional(&path)?;
    let s = parse(&text).map_err(|what| Error::Parse {
        path: path.clone(),
        what: format!("failed to retrieve nfs stats: {what}"),
    })?;
    for (protocol, v) in [("udp", s.net[1]), ("tcp", s.net[2])] {
        out.counter(
            "node_nfs_packets_total",
            "Total NFSd network packets (sent+received) by protocol type.",
            &[("protocol", protocol)],
            v as f64,
        );
    }
    for (name, help, v) in [
        (
            "node_nfs_connections_total",
            "Total number of NFSd TCP connections.",
            s.net[3],
        ),
        (
            "node_nfs_rpcs_total",
            "Total number of RPCs performed.",
            s.rpc[0],
        ),
        (
            "node_nfs_rpc_retransmissions_total",
            "Number of RPC transmissions performed.",
            s.rpc[1],
        ),
        (
            "node_nfs_rpc_authentication_refreshes_total",
            "Number of RPC authentication refreshes performed.",
            s.rpc[2],
        ),
    ] {
        out.counter(name, help, &[], v as f64);
    }
    for (proto, names, values) in [
        ("2", &V2[..], &s.v2),
        ("3", &V3[..], &s.v3),
        ("4", &V4[..], &s.v4),
    ] {
        for (method, v) in names.iter().zip(values.iter()) {
            out.counter(
                "node_nfs_requests_total",
                "Number of NFS procedures invoked.",
                &[("proto", proto), ("method", method)],
                *v as f64,
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_checked_as_procfs_checks_them() {
        let ok = "net 18628 0 18628 6\nrpc 4329785 0 4338291\nproc2 18 2 69 0 0 4410 0 0 0 0 0 0 0 0 0 0 0 99 2\nproc3 22 1 4084749 29200 94754 32580 186 47747 7981 8639 0 6356 0 6962 0 7958 0 0 241 4 4 2 39\nproc4 3 1 2 3\n";
        let s = parse(ok).unwrap();
        assert_eq!(s.net, [18628, 0, 18628, 6]);
        assert_eq!(s.v2[17], 2);
        assert_eq!(s.v3[21], 39);
        assert_eq!(s.v4.len(), 59);
        assert_eq!(&s.v4[..4], &[1, 2, 3, 0]);
        for bad in [
            "net 1 2 3\n",
            "rpc 1 2 3 4\n",
            "proc2 3 1 2 3\n",
            "proc3 23 1\n",
            "proc4 2 1\n",
            "nfs 1 2\n",
            "net\n",
            "net a b c d\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        // No lines at all: every count 0.
        assert_eq!(parse("").unwrap().v3, vec![0; 22]);
    }
}
