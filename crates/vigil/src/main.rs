//! The `vigil` binary: Prometheus-compatible flags, subcommands, and the server's wiring.

mod agent;
mod argv;
mod check;
mod demo;
mod engine_metrics;
mod exporters;
mod flags;
mod malloc;
mod node_flags;
mod process_metrics;
mod server;
mod server_flags;
mod tsdb_metrics;

use clap::FromArgMatches;

use flags::{CheckCommand, Cli, Command, CreateFrom, TestCommand, TsdbCommand};

fn main() -> std::process::ExitCode {
    let cmd = flags::command();
    let argv = argv::rewrite(std::env::args_os().collect(), &cmd);
    let matches = cmd.clone().get_matches_from(argv);
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.server.given = flags::given(&cmd, &matches);
    if cli.server.write_documentation {
        print!("{}", server_flags::documentation());
        return std::process::ExitCode::SUCCESS;
    }
    // Before any rule file or query is parsed, by the server or `check`/`test`
    // (`vigil --enable-feature=... check rules FILE`, as promtool takes it): every expression
    // reads the same language.
    vigil_promql::Features {
        binop_fill_modifiers: server_flags::feature(&cli.server, "promql-binop-fill-modifiers"),
    }
    .install();
    // Every command: the server, the demo (a server too) and the exporters all read large
    // bodies or build large answers. No thread exists yet.
    malloc::fixed_mmap_threshold();
    match cli.command {
        Some(Command::Check {
            what:
                CheckCommand::Config {
                    syntax_only,
                    agent,
                    files,
                },
        }) => check::config(&files, syntax_only, agent),
        Some(Command::Check {
            what:
                CheckCommand::Rules {
                    lint,
                    lint_fatal,
                    files,
                },
        }) => check::rules(&files, &lint, lint_fatal),
        Some(Command::Test {
            what: TestCommand::Rules { files },
        }) => check::test_rules(
            &files,
            &vigil_promql::Engine {
                delayed_name_removal: server_flags::feature(
                    &cli.server,
                    "promql-delayed-name-removal",
                ),
                type_and_unit_labels: server_flags::feature(&cli.server, "type-and-unit-labels"),
                ..Default::default()
            },
        ),
        Some(Command::Tsdb { what }) => tsdb_command(what),
        Some(Command::Probe(f)) => exporters::probe(f),
        Some(Command::KubeState(f)) => exporters::kube_state(*f),
        Some(Command::ContainerMetrics(f)) => exporters::container_metrics(f),
        Some(Command::Node(f)) => exporters::node(*f),
        Some(Command::Demo(f)) => demo::main(f),
        None => {
            if cli.server.agent_mode() {
                malloc::one_arena();
            }
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("vigil: cannot start the async runtime: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            match rt.block_on(server::run(cli.server)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("vigil: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}

fn tsdb_command(cmd: TsdbCommand) -> std::process::ExitCode {
    let res = match cmd {
        TsdbCommand::CreateBlocksFrom {
            max_block_duration,
            from: CreateFrom::Openmetrics { input, output },
        } => vigil_model::time::parse_duration_ms(&max_block_duration)
            .ok_or_else(|| format!("invalid --max-block-duration {max_block_duration:?}"))
            .and_then(|range| {
                std::fs::read(&input)
                    .map_err(|e| format!("read {}: {e}", input.display()))
                    .map(|b| (b, range))
            })
            .and_then(|(b, range)| {
                vigil_tsdb::backfill::create_blocks_from_openmetrics(&b, &output, range.max(1))
            })
            .map(|metas| {
                for m in metas {
                    println!(
                        "BLOCK ULID {} MIN TIME {} MAX TIME {} SERIES {} SAMPLES {}",
                        m.ulid, m.min_time, m.max_time, m.stats.num_series, m.stats.num_samples
                    );
                }
            }),
        TsdbCommand::Analyze { dir, limit } => {
            vigil_tsdb::tools::analyze(&dir, limit).map(|r| print!("{r}"))
        }
        TsdbCommand::Export {
            format: _,
            dir,
            out,
        } => vigil_tsdb::tools::export_prometheus(&dir, &out).map(|e| {
            for m in e.blocks {
                println!(
                    "BLOCK ULID {} MIN TIME {} MAX TIME {} SERIES {} SAMPLES {}",
                    m.ulid, m.min_time, m.max_time, m.stats.num_series, m.stats.num_samples
                );
            }
        }),
        TsdbCommand::Dump {
            dir,
            min_time,
            max_time,
        } => vigil_tsdb::tools::dump(&dir, min_time, max_time, &mut std::io::stdout().lock()),
    };
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil tsdb: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
