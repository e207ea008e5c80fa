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
    args.into_iter()
        .map(|a| {
            let Some(s) = a.to_str() else { return a };
            match s.strip_prefix("--no-") {
                Some(name) if bools.iter().any(|b| b == name) => format!("--{name}=false").into(),
                _ => a,
            }
        })
        .collect()
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
}
