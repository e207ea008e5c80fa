//! Hostile and odd node files: the scrape always completes, the collector that met the bad
//! file says so, and the others are unaffected.

use super::*;

fn node_in(files: &[(&str, &str)], collectors: &[&str]) -> (Node, std::path::PathBuf) {
    let root = std::env::temp_dir().join(format!(
        "vigil-node-unit-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    for (rel, text) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let paths = Paths {
        procfs: root.join("proc"),
        sysfs: root.join("sys"),
        rootfs: root.join("root"),
        udev_data: root.join("udev"),
    };
    (Node::new(paths, Options::default(), collectors), root)
}

fn success(text: &str, collector: &str) -> Option<f64> {
    let key = format!("node_scrape_collector_success{{collector=\"{collector}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_fifo_or_huge_file_is_refused_not_read() {
    let (n, root) = node_in(&[("proc/stat", "ctxt 5\n")], &["loadavg", "stat"]);
    let fifo = std::ffi::CString::new(root.join("proc/loadavg").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    // A scrape that tried to read the FIFO would block here forever.
    let text = n.scrape();
    assert_eq!(success(&text, "loadavg"), Some(0.0), "{text}");
    assert_eq!(success(&text, "stat"), Some(1.0), "{text}");
    assert!(text.contains("node_context_switches_total 5\n"));

    let big = "x".repeat(MAX_FILE as usize + 1);
    std::fs::write(root.join("proc/stat"), big).unwrap();
    assert_eq!(success(&n.scrape(), "stat"), Some(0.0));
}

#[test]
fn names_from_files_that_are_not_metric_names_fail_only_their_collector() {
    let (n, _) = node_in(
        &[
            ("proc/meminfo", "MemTotal: 1 kB\nBad Key{x}: 2 kB\n"),
            ("proc/vmstat", "pgfault 7\n"),
            ("proc/loadavg", "1 2 inf 1/1 1\n"),
        ],
        &["meminfo", "vmstat", "loadavg"],
    );
    let text = n.scrape();
    assert_eq!(success(&text, "meminfo"), Some(0.0), "{text}");
    assert!(text.contains("node_memory_MemTotal_bytes 1024\n"));
    assert!(!text.contains("Bad Key"), "{text}");
    assert_eq!(success(&text, "vmstat"), Some(1.0));
    // No kernel file holds inf.
    assert_eq!(success(&text, "loadavg"), Some(0.0));
    // The page stays parseable.
    for e in
        vigil_model::exposition::Parser::new(text.as_bytes(), vigil_model::exposition::Format::Text)
    {
        e.unwrap();
    }
}

#[test]
fn netstat_lines_out_of_step_are_an_error() {
    let (n, _) = node_in(
        &[
            (
                "proc/net/netstat",
                "TcpExt: A B\nTcpExt: 1 2\nIpExt: InOctets\nIcmp: 5\n",
            ),
            ("proc/net/snmp", ""),
        ],
        &["netstat"],
    );
    assert_eq!(success(&n.scrape(), "netstat"), Some(0.0));
    let (n, _) = node_in(
        &[
            ("proc/net/netstat", "IpExt: InOctets OutOctets\nIpExt: 1\n"),
            ("proc/net/snmp", ""),
        ],
        &["netstat"],
    );
    assert_eq!(success(&n.scrape(), "netstat"), Some(0.0));
}

#[test]
fn a_pending_resync_has_nothing_synced() {
    let (n, _) = node_in(
        &[(
            "proc/mdstat",
            "Personalities : [raid1]\nmd0 : active (auto-read-only) raid1 sda1[0] sdb1[1]\n      1000 blocks super 1.2 [2/2] [UU]\n      \tresync=PENDING\n\nmd1 : active raid1 sdc1[0] sdd1[1]\n      500 blocks [2/2] [UU]\n\nunused devices: <none>\n",
        )],
        &["mdadm"],
    );
    let text = n.scrape();
    assert!(
        text.contains("node_md_blocks_synced{device=\"md0\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("node_md_state{device=\"md0\",state=\"resync\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("node_md_blocks_synced{device=\"md1\"} 500\n"),
        "{text}"
    );
    assert!(
        text.contains("node_md_state{device=\"md1\",state=\"active\"} 1\n"),
        "{text}"
    );
}

#[test]
fn collect_params_name_each_collector_once() {
    let (n, _) = node_in(&[("proc/loadavg", "1 2 3 1/1 1\n")], &["loadavg", "stat"]);
    let c = n.select(&["loadavg".into(), "loadavg".into()]).unwrap();
    assert_eq!(c.len(), 1);
    let text = n.scrape_only(&c);
    assert_eq!(text.matches("node_scrape_collector_success{").count(), 1);
    assert_eq!(
        n.select(&["systemd".into()]).err().unwrap(),
        "vigil node does not implement the systemd collector"
    );
    assert_eq!(
        n.select(&["cpu".into()]).err().unwrap(),
        "disabled collector: cpu"
    );
    assert_eq!(
        n.select(&["nosuch".into()]).err().unwrap(),
        "missing collector: nosuch"
    );
}

#[test]
fn a_textfile_cannot_take_over_a_collectors_family() {
    let (mut n, root) = node_in(
        &[("proc/loadavg", "1 2 3 1/1 1\n")],
        &["loadavg", "textfile"],
    );
    std::fs::create_dir_all(root.join("text")).unwrap();
    std::fs::write(
        root.join("text/x.prom"),
        "# TYPE node_load1 counter\nnode_load1 9\n# TYPE mine gauge\nmine 1\n",
    )
    .unwrap();
    n.opts.textfile_dir = Some(root.join("text"));
    let text = n.scrape();
    assert!(
        text.contains("# TYPE node_load1 gauge\nnode_load1 1\n"),
        "{text}"
    );
    assert!(text.contains("mine 1\n"));
    assert!(text.contains("node_textfile_scrape_error 1\n"), "{text}");
}

/// A long HELP over many samples is held once, not once per sample: 256 KiB of help over
/// 4,000 samples would otherwise take a gigabyte.
#[test]
fn a_textfile_help_is_held_once_for_its_family() {
    let peak = || -> usize {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
            .unwrap()
            * 1024
    };
    let (mut n, root) = node_in(&[], &["textfile"]);
    std::fs::create_dir_all(root.join("text")).unwrap();
    let help = "h".repeat(256 << 10);
    let mut body = format!("# HELP wide {help}\n# TYPE wide gauge\n");
    for i in 0..4000 {
        body.push_str(&format!("wide{{i=\"{i}\"}} 1\n"));
    }
    std::fs::write(root.join("text/wide.prom"), body).unwrap();
    n.opts.textfile_dir = Some(root.join("text"));
    let before = peak();
    let text = n.scrape();
    let grew = peak().saturating_sub(before);
    assert_eq!(text.matches("# HELP wide ").count(), 1);
    assert_eq!(text.matches("\nwide{i=").count(), 4000);
    assert!(
        grew < 300 << 20,
        "scraping grew the process by {grew} bytes"
    );
}
