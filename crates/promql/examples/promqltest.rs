//! Run `.test` files in Prometheus's PromQL test format against vigil's engine and print
//! each failed eval: `cargo run -p vigil-promql --example promqltest -- FILE...`.
//! Exits non-zero if any eval failed.

fn main() {
    let mut failed = 0;
    for path in std::env::args().skip(1) {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{path}: {e}");
                std::process::exit(2);
            }
        };
        let r = vigil_promql::promqltest::run(&text);
        println!("{path}: {} passed, {} failed", r.passed, r.failed.len());
        for (line, expr, why) in &r.failed {
            println!("  {path}:{line}: {expr}\n      {why}");
        }
        failed += r.failed.len();
    }
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
