//! Collectors of single procfs files about the kernel as a whole: loadavg, meminfo, stat,
//! vmstat, pressure, entropy, filefd.

use super::{Error, Node, Out, parse_f64, read, read_optional};

/// `/proc/loadavg`: node_load1, node_load5, node_load15.
pub fn loadavg(n: &Node, out: &mut Out) -> Result<(), Error> {
    let path = n.proc("loadavg");
    let s = read(&path)?;
    let mut f = s.split_whitespace();
    for (name, help) in [
        ("node_load1", "1m load average."),
        ("node_load5", "5m load average."),
        ("node_load15", "15m load average."),
    ] {
        let v = f.next().ok_or_else(|| Error::Parse {
            path: path.clone(),
            what: "fewer than three load averages".into(),
        })?;
        out.gauge(name, help, &[], parse_f64(&path, v)?);
    }
    Ok(())
}

/// `/proc/meminfo`: one gauge per field, `(x)` written `_x`, kB fields in bytes with a
/// `_bytes` suffix.
pub fn meminfo(n: &Node, out: &mut Out) -> Result<(), Error> {
    let path = n.proc("meminfo");
    let s = read(&path)?;
    let mut name = String::new();
    for line in s.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let Some(v) = f.next() else { continue };
        let mut v = parse_f64(&path, v)?;
        name.clear();
        name.push_str("node_memory_");
        name.extend(
            key.chars()
                .filter(|c| *c != ')')
                .map(|c| if c == '(' { '_' } else { c }),
        );
        if f.next() == Some("kB") {
            v *= 1024.0;
            name.push_str("_bytes");
        }
        let help = format!(
            "Memory information field {}.",
            &name["node_memory_".len()..]
        );
        out.gauge(&name, &help, &[], v);
    }
    Ok(())
}

/// `/proc/stat`'s system-wide lines: interrupts, context switches, boot time, forks and
/// process states.
pub fn stat(n: &Node, out: &mut Out) -> Result<(), Error> {
    let path = n.proc("stat");
    let s = read(&path)?;
    for line in s.lines() {
        let mut f = line.split_whitespace();
        let (Some(key), Some(v)) = (f.next(), f.next()) else {
            continue;
        };
        let (name, help, counter) = match key {
            "intr" => (
                "node_intr_total",
                "Total number of interrupts serviced.",
                true,
            ),
            "ctxt" => (
                "node_context_switches_total",
                "Total number of context switches.",
                true,
            ),
            "btime" => (
                "node_boot_time_seconds",
                "Node boot time, in unixtime.",
                false,
            ),
            "processes" => ("node_forks_total", "Total number of forks.", true),
            "procs_running" => (
                "node_procs_running",
                "Number of processes in runnable state.",
                false,
            ),
            "procs_blocked" => (
                "node_procs_blocked",
                "Number of processes blocked waiting for I/O to complete.",
                false,
            ),
            _ => continue,
        };
        let v = parse_f64(&path, v)?;
        if counter {
            out.counter(name, help, &[], v);
        } else {
            out.gauge(name, help, &[], v);
        }
    }
    Ok(())
}

/// `/proc/vmstat`: the fields `--collector.vmstat.fields` selects, untyped.
pub fn vmstat(n: &Node, out: &mut Out) -> Result<(), Error> {
    let path = n.proc("vmstat");
    let s = read(&path)?;
    for line in s.lines() {
        let Some((key, v)) = line.split_once(' ') else {
            continue;
        };
        if !n.opts.vmstat_fields.is_match(key) {
            continue;
        }
        out.untyped(
            &format!("node_vmstat_{key}"),
            &format!("/proc/vmstat information field {key}."),
            &[],
            parse_f64(&path, v)?,
        );
    }
    Ok(())
}

/// `/proc/pressure/{cpu,io,memory}`: the `total=` of each `some` (waiting) and `full`
/// (stalled) line, in seconds. CPU's `full` line is not reported, as node_exporter does.
pub fn pressure(n: &Node, out: &mut Out) -> Result<(), Error> {
    let mut found = false;
    for (res, waiting, stalled) in [
        (
            "cpu",
            Some("Total time in seconds that processes have waited for CPU time"),
            None,
        ),
        (
            "io",
            Some("Total time in seconds that processes have waited due to IO congestion"),
            Some("Total time in seconds no process could make progress due to IO congestion"),
        ),
        (
            "memory",
            Some("Total time in seconds that processes have waited for memory"),
            Some("Total time in seconds no process could make progress due to memory congestion"),
        ),
    ] {
        let path = n.proc(&format!("pressure/{res}"));
        let s = match read_optional(&path) {
            Ok(s) => s,
            // A kernel without PSI has no directory; one with PSI disabled fails to read it.
            Err(Error::NoData(_)) => continue,
            Err(Error::Read { source, .. }) if source.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                continue;
            }
            Err(e) => return Err(e),
        };
        found = true;
        for line in s.lines() {
            let mut f = line.split_whitespace();
            let kind = f.next();
            let Some(total) = f.find_map(|x| x.strip_prefix("total=")) else {
                continue;
            };
            // Microseconds; divided as node_exporter divides, so the printed digits match.
            let secs = parse_f64(&path, total)? / 1000.0 / 1000.0;
            match (kind, waiting, stalled) {
                (Some("some"), Some(h), _) => out.counter(
                    &format!("node_pressure_{res}_waiting_seconds_total"),
                    h,
                    &[],
                    secs,
                ),
                (Some("full"), _, Some(h)) => out.counter(
                    &format!("node_pressure_{res}_stalled_seconds_total"),
                    h,
                    &[],
                    secs,
                ),
                _ => {}
            }
        }
    }
    if found {
        Ok(())
    } else {
        Err(Error::NoData(
            "pressure stall information is not available".into(),
        ))
    }
}

/// `/proc/sys/kernel/random/{entropy_avail,poolsize}`.
pub fn entropy(n: &Node, out: &mut Out) -> Result<(), Error> {
    for (file, name, help) in [
        (
            "sys/kernel/random/entropy_avail",
            "node_entropy_available_bits",
            "Bits of available entropy.",
        ),
        (
            "sys/kernel/random/poolsize",
            "node_entropy_pool_size_bits",
            "Bits of entropy pool.",
        ),
    ] {
        let path = n.proc(file);
        let s = read(&path)?;
        out.gauge(name, help, &[], parse_f64(&path, &s)?);
    }
    Ok(())
}

/// `/proc/sys/fs/file-nr`: allocated and maximum file handles.
pub fn filefd(n: &Node, out: &mut Out) -> Result<(), Error> {
    let path = n.proc("sys/fs/file-nr");
    let s = read(&path)?;
    let f: Vec<&str> = s.split_whitespace().collect();
    if f.len() != 3 {
        return Err(Error::Parse {
            path,
            what: format!("expected 3 fields, found {}", f.len()),
        });
    }
    out.gauge(
        "node_filefd_allocated",
        "File descriptor statistics: allocated.",
        &[],
        parse_f64(&path, f[0])?,
    );
    out.gauge(
        "node_filefd_maximum",
        "File descriptor statistics: maximum.",
        &[],
        parse_f64(&path, f[2])?,
    );
    Ok(())
}

/// The first `cpu<N>` followed by nine numbers, each after one space, anywhere in the line
/// (procfs's unanchored pattern): the CPU and the numbers.
fn schedstat_line(line: &str) -> Option<(&str, [u64; 9])> {
    let b = line.as_bytes();
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut start = 0;
    while let Some(i) = line[start..].find("cpu") {
        let at = start + i;
        start = at + 1;
        let cpu_len = digits(at + 3);
        if cpu_len == 0 {
            continue;
        }
        let mut pos = at + 3 + cpu_len;
        let mut v = [0u64; 9];
        let mut ok = true;
        for x in &mut v {
            let n = if b.get(pos) == Some(&b' ') {
                digits(pos + 1)
            } else {
                0
            };
            if n == 0 {
                ok = false;
                break;
            }
            // A number too big for 64 bits makes the line unreadable, as in procfs.
            *x = line[pos + 1..pos + 1 + n].parse().ok()?;
            pos += 1 + n;
        }
        if ok {
            return Some((&line[at + 3..at + 3 + cpu_len], v));
        }
    }
    None
}

/// `/proc/schedstat`: per CPU, time running and waiting to run, and timeslices. Lines that are
/// not a CPU's (version, timestamp, domains) are skipped.
pub fn schedstat(n: &Node, out: &mut Out) -> Result<(), Error> {
    let s = read_optional(&n.proc("schedstat"))?;
    for line in s.lines() {
        let Some((cpu, v)) = schedstat_line(line) else {
            continue;
        };
        let l = [("cpu", cpu)];
        out.counter(
            "node_schedstat_running_seconds_total",
            "Number of seconds CPU spent running a process.",
            &l,
            v[6] as f64 / 1e9,
        );
        out.counter(
            "node_schedstat_waiting_seconds_total",
            "Number of seconds spent by processing waiting for this CPU.",
            &l,
            v[7] as f64 / 1e9,
        );
        out.counter(
            "node_schedstat_timeslices_total",
            "Number of timeslices executed by CPU.",
            &l,
            v[8] as f64,
        );
    }
    Ok(())
}
