//! Exporters built into vigil, each run as a subcommand so it can be a sidecar:
//! [`probe`] (`vigil probe`, blackbox-exporter compatible), [`kube_state`] (`vigil kube-state`,
//! kube-state-metrics compatible), [`container`] (`vigil container-metrics`, cAdvisor
//! compatible) and [`node`] (`vigil node`, node_exporter compatible).

pub mod container;
pub mod exposition;
pub mod kube_state;
pub mod mounts;
pub mod node;
pub mod probe;
