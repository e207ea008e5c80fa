//! `nvme`: each NVMe controller's firmware, model, serial and state from
//! `/sys/class/nvme/<device>/`, as node_exporter 1.5 (procfs 0.8) reads and reports them.

use super::{Error, Node, Out};

/// The attributes read, in procfs's order (the first one missing decides the outcome).
const ATTRS: [&str; 4] = ["firmware_rev", "model", "serial", "state"];

pub(super) fn nvme(n: &Node, out: &mut Out) -> Result<(), Error> {
    let dir = n.sys("class/nvme");
    let rd = std::fs::read_dir(&dir).map_err(|e| super::missing_is_no_data(&dir, e))?;
    let mut entries = Vec::new();
    for e in rd {
        let e = e.map_err(|source| Error::Read {
            path: dir.clone(),
            source,
        })?;
        // Every entry is a controller, whatever its type: a stray file fails the collector.
        entries.push((e.file_name().to_string_lossy().into_owned(), e.path()));
    }
    entries.sort();
    // All controllers are read before any is written: one that cannot be read leaves the
    // collector with nothing, as in node_exporter.
    let mut devices = Vec::with_capacity(entries.len());
    for (name, path) in entries {
        let mut values: [String; 4] = Default::default();
        for (v, f) in values.iter_mut().zip(ATTRS) {
            let p = path.join(f);
            // An attribute missing on any controller is no data for the whole collector.
            *v = super::sysread(&p).map_err(|e| super::missing_is_no_data(&p, e))?;
        }
        devices.push((name, values));
    }
    for (name, [firmware, model, serial, state]) in &devices {
        out.gauge(
            "node_nvme_info",
            "Non-numeric data from /sys/class/nvme/<device>, value is always 1.",
            &[
                ("device", name),
                ("firmware_revision", firmware),
                ("model", model),
                ("serial", serial),
                ("state", state),
            ],
            1.0,
        );
    }
    Ok(())
}
