//! `vigil check config`, worded as `promtool check config`.

use std::path::PathBuf;
use std::process::ExitCode;

use vigil_config::Config;

pub fn config(files: &[PathBuf], syntax_only: bool) -> ExitCode {
    let mut failed = false;
    for f in files {
        println!("Checking {}", f.display());
        match Config::load(f) {
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
                let problems = if syntax_only {
                    Vec::new()
                } else {
                    cfg.check_files()
                };
                if problems.is_empty() {
                    // Rule files are not read yet (see the warning above), so no "rule files
                    // found" success line as promtool prints after checking them.
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
