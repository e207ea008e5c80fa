//! Exporters built into vigil, each run as a subcommand so it can be a sidecar:
//! [`probe`] (`vigil probe`, blackbox-exporter compatible).

pub mod probe;
