//! Command-line spellings Prometheus's parser (kingpin) accepts and clap does not: `--no-x`
//! for a boolean flag `--x`. Rewritten to `--x=false` before clap parses, for the command (or
//! subcommand) the arguments belong to.

use std::ffi::OsString;

/// Long names of the boolean flags of `cmd`: declared, by this crate's convention, with an
/// optional value that must follow `=` (`--x`, `--x=true`, `--x=false`).
fn bool_flags(cmd: &clap::Command) -> Vec<String> {
    cmd.get_arguments()
        .filter(|a| {
            let n = a.get_num_args();
            let optional_value = n.is_some_and(|r| r.min_values() == 0 && r.max_values() == 1);
            optional_value && a.is_require_equals_set()
        })
        .filter_map(|a| a.get_long().map(String::from))
        .collect()
}

/// `args` (program name first) with each `--no-<flag>` of a boolean flag rewritten to
/// `--<flag>=false`; everything else unchanged.
pub fn rewrite(args: Vec<OsString>, cmd: &clap::Command) -> Vec<OsString> {
    // The subcommand, if any, is the first argument naming one.
    let sub = args
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find_map(|a| cmd.find_subcommand(a));
    let bools = bool_flags(sub.unwrap_or(cmd));
    let node = sub.is_some_and(|s| s.get_name() == "node");
    args.into_iter()
        .map(|a| if node { collector_switch(a, &bools) } else { a })
        .map(|a| {
            let Some(s) = a.to_str() else { return a };
            match s.strip_prefix("--no-") {
                Some(name) if bools.iter().any(|b| b == name) => format!("--{name}=false").into(),
                _ => a,
            }
        })
        .collect()
}

/// `vigil node`'s collector switches, as node_exporter spells them: `--collector.NAME`,
/// `--collector.NAME=BOOL` and `--no-collector.NAME` (NAME without a dot, not a declared flag
/// such as `--collector.disable-defaults`) become `--collector-switch=NAME=BOOL`.
fn collector_switch(a: OsString, bools: &[String]) -> OsString {
    let Some(s) = a.to_str() else { return a };
    let (rest, on) = match (
        s.strip_prefix("--no-collector."),
        s.strip_prefix("--collector."),
    ) {
        (Some(r), _) => (r, false),
        (None, Some(r)) => (r, true),
        _ => return a,
    };
    let (name, value) = match rest.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (rest, None),
    };
    if name.contains('.') || bools.iter().any(|b| b == &format!("collector.{name}")) {
        return a;
    }
    let on = match (on, value) {
        (true, None) => "true".to_string(),
        (true, Some(v)) => v.to_string(),
        (false, None) => "false".to_string(),
        // `--no-collector.x=...` is not a spelling kingpin accepts either.
        (false, Some(_)) => return a,
    };
    format!("--collector-switch={name}={on}").into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    fn parse(args: &[&str]) -> crate::flags::Cli {
        let argv: Vec<OsString> = std::iter::once("vigil")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        crate::flags::Cli::try_parse_from(rewrite(argv, &crate::flags::Cli::command()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn kingpin_negations_and_values() {
        assert!(parse(&["--web.enable-lifecycle"]).server.enable_lifecycle);
        assert!(
            !parse(&["--web.enable-lifecycle", "--no-web.enable-lifecycle"])
                .server
                .enable_lifecycle
        );
        assert!(
            !parse(&["--web.enable-lifecycle=false"])
                .server
                .enable_lifecycle
        );
        assert_eq!(
            parse(&["--no-storage.tsdb.wal-compression"])
                .server
                .wal_compression,
            Some(false)
        );
        assert_eq!(parse(&[]).server.wal_compression, None);
        assert!(
            !parse(&["--no-auto-gomaxprocs"])
                .server
                .auto_gomaxprocs
                .unwrap()
        );
        // A flag that is not boolean is left alone (and then refused by clap).
        let argv: Vec<OsString> = ["vigil", "--no-config.file"].map(OsString::from).to_vec();
        assert!(
            crate::flags::Cli::try_parse_from(rewrite(argv, &crate::flags::Cli::command()))
                .is_err()
        );
    }

    /// Each exporter listens where the exporter it replaces does when given no address:
    /// node_exporter :9100, the blackbox exporter :9115, cAdvisor :8080, kube-state-metrics
    /// :8080 with its own metrics on :8081.
    #[test]
    fn exporters_listen_where_the_ones_they_replace_do_by_default() {
        use crate::flags::Command;
        match parse(&["node"]).command {
            Some(Command::Node(f)) => assert_eq!(f.listen_address, [":9100"]),
            other => panic!("{other:?}"),
        }
        match parse(&["probe"]).command {
            Some(Command::Probe(f)) => assert_eq!(f.listen_address, [":9115"]),
            other => panic!("{other:?}"),
        }
        match parse(&["container-metrics"]).command {
            Some(Command::ContainerMetrics(f)) => {
                assert_eq!(
                    (f.listen_address, f.listen_ip.as_str(), f.port),
                    (None, "", 8080)
                )
            }
            other => panic!("{other:?}"),
        }
        match parse(&["kube-state"]).command {
            Some(Command::KubeState(f)) => assert_eq!(
                (f.listen_address, f.port, f.telemetry_port),
                (None, 8080, 8081)
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn node_collector_switches_keep_their_order() {
        let argv: Vec<OsString> = [
            "vigil",
            "node",
            "--collector.cpu",
            "--no-collector.zfs",
            "--collector.meminfo=false",
            "--collector.disable-defaults",
            "--no-collector.cpu.guest",
            "--collector.filesystem.mount-timeout=1s",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let out: Vec<String> = rewrite(argv, &crate::flags::Cli::command())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            out[2..],
            [
                "--collector-switch=cpu=true",
                "--collector-switch=zfs=false",
                "--collector-switch=meminfo=false",
                "--collector.disable-defaults",
                "--collector.cpu.guest=false",
                "--collector.filesystem.mount-timeout=1s",
            ]
        );
    }
}
