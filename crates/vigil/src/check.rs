//! `vigil check config` and `vigil check rules`, worded as `promtool check config|rules`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use vigil_config::Config;
use vigil_rules::file::RuleFile;

/// What checking one rule file found: `Err` for errors, `Ok(lint findings)` otherwise.
fn check_rule_file(path: &str, lint: bool) -> Result<(usize, Vec<String>), Vec<String>> {
    let rf = vigil_rules::file::load(std::path::Path::new(path))?;
    let n = rf.groups.iter().map(|g| g.rules.len()).sum();
    Ok((n, if lint { duplicates(&rf) } else { Vec::new() }))
}

/// promtool's duplicate-rule lint: rules with the same name and labels.
fn duplicates(rf: &RuleFile) -> Vec<String> {
    let mut seen: BTreeMap<(String, Vec<(String, String)>), usize> = BTreeMap::new();
    for g in &rf.groups {
        for r in &g.rules {
            let labels: Vec<(String, String)> = r
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            *seen.entry((r.name.clone(), labels)).or_default() += 1;
        }
    }
    let dups: Vec<_> = seen.into_iter().filter(|(_, n)| *n > 1).collect();
    if dups.is_empty() {
        return Vec::new();
    }
    let mut msg = format!("lint error {} duplicate rule(s) found.\n", dups.len());
    for ((name, labels), _) in dups {
        msg.push_str(&format!("Metric: {name}\nLabel(s):\n"));
        for (k, v) in labels {
            msg.push_str(&format!("\t{k}: {v}\n"));
        }
    }
    msg.push_str("Might cause inconsistency while recording expressions");
    vec![msg]
}

/// Print one rule file's verdict as promtool does; `(errors, lint findings)`.
fn report_rule_file(path: &str, lint: bool) -> (bool, bool) {
    println!("Checking {path}");
    let out = match check_rule_file(path, lint) {
        Err(errs) => {
            eprintln!("  FAILED:");
            for e in errs {
                eprintln!("{e}");
            }
            (true, false)
        }
        Ok((n, findings)) => {
            let linted = !findings.is_empty();
            if linted {
                eprintln!("  FAILED:");
                for f in findings {
                    eprintln!("{f}");
                }
            } else {
                println!("  SUCCESS: {n} rules found");
            }
            (false, linted)
        }
    };
    println!();
    out
}

fn lint_enabled(lint: &str) -> bool {
    let mut on = false;
    for l in lint.split(',') {
        match l {
            "all" | "duplicate-rules" => on = true,
            "none" => on = false,
            other => println!("WARNING: unknown lint option: {other:?}"),
        }
    }
    on
}

pub fn rules(files: &[PathBuf], lint: &str, lint_fatal: bool) -> ExitCode {
    let lint = lint_enabled(lint);
    let (mut failed, mut linted) = (false, false);
    for f in files {
        let (e, l) = report_rule_file(&f.display().to_string(), lint);
        failed |= e;
        linted |= l;
    }
    if failed {
        ExitCode::from(1)
    } else if linted && lint_fatal {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

/// `vigil test rules`, reported as `promtool test rules`.
pub fn test_rules(files: &[PathBuf], engine: &vigil_promql::Engine) -> ExitCode {
    let mut failed = false;
    for f in files {
        println!("Unit Testing:  {}", f.display());
        match vigil_rules::unittest::run_file(f, engine) {
            Ok(()) => println!("  SUCCESS"),
            Err(errs) => {
                failed = true;
                eprintln!("  FAILED:");
                for e in errs {
                    eprintln!("{e}");
                    println!();
                }
            }
        }
        println!();
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

pub fn config(files: &[PathBuf], syntax_only: bool, agent: bool) -> ExitCode {
    let mut failed = false;
    for f in files {
        println!("Checking {}", f.display());
        let loaded = Config::load(f).map_err(|e| e.to_string()).and_then(|c| {
            if agent {
                c.check_agent()?;
            }
            Ok(c)
        });
        match loaded {
            Ok(cfg) => {
                let not_running: Vec<String> =
                    cfg.unimplemented().iter().map(|u| u.to_string()).collect();
                for w in &cfg.warnings {
                    if not_running.contains(w) {
                        println!("  WARNING: NOT RUNNING: {w}");
                    } else {
                        println!("  WARNING: {w}");
                    }
                }
                let mut problems = if syntax_only {
                    Vec::new()
                } else {
                    cfg.check_files()
                };
                // Rule files: each pattern must match (unless it is a glob), then each file
                // is checked as `check rules` checks it.
                let mut rule_files = Vec::new();
                if !syntax_only {
                    match vigil_rules::manager::expand(&cfg.rule_files) {
                        Ok(v) => rule_files = v,
                        Err(errs) => problems.extend(errs),
                    }
                }
                if problems.is_empty() {
                    if !rule_files.is_empty() {
                        println!("  SUCCESS: {} rule files found", rule_files.len());
                    }
                    // promtool says nothing of a glob that matches nothing; vigil names it.
                    if !syntax_only {
                        for p in vigil_rules::manager::unmatched(&cfg.rule_files) {
                            println!("  WARNING: rule_files pattern {p:?} matches no file");
                        }
                    }
                    println!(
                        " SUCCESS: {} is valid prometheus config file syntax",
                        f.display()
                    );
                } else {
                    failed = true;
                    for p in problems {
                        println!("  FAILED: {p}");
                    }
                }
                println!();
                for rf in &rule_files {
                    let (e, _) = report_rule_file(rf, true);
                    failed |= e;
                }
                continue;
            }
            Err(e) => {
                failed = true;
                println!("  FAILED: {e}");
            }
        }
        println!();
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
