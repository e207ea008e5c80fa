//! The README's commands, run as a newcomer runs them, so they cannot go stale: the first
//! (`cargo run --release -p vigil`, the binary with no arguments: the embedded config, the UI
//! on :9090) is started as built for the tests, and the README's `curl` must then print what
//! the README says it prints; the second (`./scripts/test`) is what `.ci/run` runs, checked to
//! be so. The README must hold exactly these commands. Its `vigil demo` commands are the ones
//! `tests/demo.rs` runs (checked here, so a README edit cannot drift from that test).

mod support;

use std::process::Command;
use std::time::Duration;

use support::*;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap()
}

/// The lines of every ```sh block, and every `command` quoted inline after "After the first
/// command,".
fn sh_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for l in text.lines() {
        if l.trim_start().starts_with("```") {
            inside = !inside && l.trim() == "```sh";
            continue;
        }
        if inside && !l.trim().is_empty() {
            out.push(l.trim().to_string());
        }
    }
    out
}

#[test]
fn the_readme_commands_do_what_it_says() {
    let text = readme();
    assert_eq!(
        sh_blocks(&text),
        ["cargo run --release -p vigil", "./scripts/test"],
        "the README's set-up commands"
    );
    // The second is CI's: .ci/run ends in it.
    let ci =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/run")).unwrap();
    assert_eq!(ci.trim_end().lines().last(), Some("./scripts/test"), "{ci}");

    // The first: no arguments at all.
    assert!(
        std::net::TcpListener::bind("0.0.0.0:9090").is_ok(),
        "port 9090 is taken: the README's first command serves there, stop what listens on it"
    );
    let dir = temp_dir("readme");
    let _v = spawn("vigil", &vigil_bin(), &[], &dir);
    wait_http("http://127.0.0.1:9090/-/ready");
    // "After the first command, `curl '...'` answers within one scrape interval (15s) with
    // `<series> 1`": the command as written, and the series it names.
    let after = text
        .split_once("After the first command, `")
        .expect("the README says what the first command gives")
        .1;
    let (curl, rest) = after.split_once('`').unwrap();
    let series = rest.split('`').nth(1).unwrap();
    let (name_labels, value) = series.rsplit_once(' ').unwrap();
    let (name, labels) = name_labels.split_once('{').unwrap();
    let labels = labels.trim_end_matches('}');
    let got = wait_for(
        "the README's curl to print its series",
        Duration::from_secs(30),
        || {
            let out = Command::new("sh").arg("-c").arg(curl).output().ok()?;
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let r = v["data"]["result"].as_array()?.first()?.clone();
            (!r.is_null()).then_some(r)
        },
    );
    let mut want = serde_json::Map::new();
    want.insert("__name__".into(), name.into());
    for pair in labels.split(',') {
        let (k, v) = pair.split_once('=').unwrap();
        want.insert(k.into(), v.trim_matches('"').into());
    }
    assert_eq!(got["metric"], serde_json::Value::Object(want), "{got}");
    assert_eq!(got["value"][1], value, "{got}");
}

/// The demo commands the README names are the ones the demo test runs: `vigil demo` (through
/// cargo, with no further arguments) and `vigil demo scale timecheck 3` (through cargo).
#[test]
fn the_readme_demo_commands_are_the_tested_ones() {
    let text = readme();
    assert!(
        text.contains("`cargo run --release -p vigil -- demo`"),
        "{text}"
    );
    assert!(
        text.contains("`cargo run --release -p vigil -- demo scale timecheck 3`"),
        "{text}"
    );
    let test =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/demo.rs")).unwrap();
    // The test gives only the listen address (a free port instead of :9090) and TMPDIR.
    assert!(
        test.contains(".args([\"demo\", &format!(\"--web.listen-address="),
        "{test}"
    );
    assert!(
        test.contains("[\"demo\", \"scale\", \"timecheck\", \"3\"]"),
        "{test}"
    );
}
