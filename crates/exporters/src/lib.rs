//! Exporters built into vigil, each run as a subcommand so it can be a sidecar:
//! [`probe`] (`vigil probe`, blackbox-exporter compatible) and [`kube_state`] (`vigil
//! kube-state`, kube-state-metrics compatible).

pub mod kube_state;
pub mod probe;
