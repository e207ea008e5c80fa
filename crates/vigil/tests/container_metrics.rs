//! `vigil container-metrics` on cgroup trees built in a temporary directory with the files'
//! real formats (cgroup v2 with the systemd driver, named through the fake API server; cgroup
//! v1 with cgroupfs and no API), and on this machine's own cgroups.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use support::*;
use vigil_kube_fake::FakeKube;

const APP: &str = "3f9a0b1c2d3e4f5061728394a5b6c7d8e9f00112233445566778899aabbccdde";
const PAUSE: &str = "aa11bb22cc33dd44ee55ff6600112233445566778899aabbccddeeff00112233";
const UID: &str = "6c3f0f4e-2b1a-4d7e-9c1e-8a4f1b2c3d4e";

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

const MEMORY_STAT: &str = "anon 73400320\nfile 31457280\nkernel 2097152\nfile_mapped 8388608\ninactive_anon 72351744\nactive_anon 1048576\ninactive_file 20971520\nactive_file 10485760\npgfault 48213\npgmajfault 17\n";
const CPU_STAT: &str = "usage_usec 183453210\nuser_usec 120345678\nsystem_usec 63107532\nnr_periods 51234\nnr_throttled 1203\nthrottled_usec 45678901\nnr_bursts 0\nburst_usec 0\n";
const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:    4210      52    0    0    0     0          0         0     4210      52    0    0    0     0       0          0\n  eth0: 9876543    6543    1    2    0     0          0         0  1234567    4321    3    5    0     0       0          0\nveth12ab:  100  1 0 0 0 0 0 0  100 1 0 0 0 0 0 0\n";

/// A cgroup v2 node: the root, the pods' tree, one burstable pod with its sandbox and an app
/// container with a CPU limit, one guaranteed pod without a limit and with `inactive_file`
/// above its usage.
fn v2_node(root: &Path) {
    let cg = "sys/fs/cgroup";
    write(
        root,
        &format!("{cg}/cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    );
    write(
        root,
        &format!("{cg}/cpu.stat"),
        "usage_usec 999000000\nuser_usec 600000000\nsystem_usec 399000000\n",
    );
    write(root, &format!("{cg}/memory.stat"), MEMORY_STAT);
    write(
        root,
        &format!("{cg}/io.stat"),
        "8:0 rbytes=1000 wbytes=2000 rios=3 wios=4 dbytes=0 dios=0\n",
    );
    write(root, &format!("{cg}/cgroup.procs"), "1\n");
    let pod = format!(
        "{cg}/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
        UID.replace('-', "_")
    );
    for dir in [
        format!("{cg}/kubepods.slice"),
        format!("{cg}/kubepods.slice/kubepods-burstable.slice"),
        pod.clone(),
    ] {
        write(root, &format!("{dir}/cpu.stat"), CPU_STAT);
        write(root, &format!("{dir}/cpu.max"), "max 100000\n");
        write(root, &format!("{dir}/cpu.weight"), "100\n");
        write(root, &format!("{dir}/memory.current"), "107479040\n");
        write(root, &format!("{dir}/memory.stat"), MEMORY_STAT);
        write(root, &format!("{dir}/memory.max"), "max\n");
        write(root, &format!("{dir}/cgroup.procs"), "");
    }
    let app = format!("{pod}/cri-containerd-{APP}.scope");
    write(root, &format!("{app}/cpu.stat"), CPU_STAT);
    write(root, &format!("{app}/cpu.max"), "200000 100000\n");
    write(root, &format!("{app}/cpu.weight"), "39\n");
    write(root, &format!("{app}/memory.current"), "107479040\n");
    write(root, &format!("{app}/memory.stat"), MEMORY_STAT);
    write(root, &format!("{app}/memory.max"), "268435456\n");
    write(root, &format!("{app}/memory.peak"), "120000000\n");
    write(root, &format!("{app}/memory.swap.current"), "4096\n");
    // The container's own OOM kills (`.local`) are reported, not the subtree's.
    write(
        root,
        &format!("{app}/memory.events.local"),
        "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n",
    );
    write(
        root,
        &format!("{app}/memory.events"),
        "low 0\nhigh 0\nmax 12\noom 5\noom_kill 5\noom_group_kill 0\n",
    );
    write(
        root,
        &format!("{app}/io.stat"),
        "8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 dbytes=50331648 dios=3021\n259:0 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n",
    );
    write(root, &format!("{app}/cgroup.procs"), "4243\n4244\n");
    // Their open files: five descriptors, two of them sockets (4244's fd table is gone, as
    // for a process that exited between the two reads: it counts nothing).
    for (pid, fd, target) in [
        (4243, 0, "/dev/null"),
        (4243, 1, "pipe:[3391]"),
        (4243, 3, "socket:[812731]"),
        (4243, 4, "/var/log/app.log"),
        (4243, 7, "socket:[812733]"),
    ] {
        let link = root.join(format!("proc/{pid}/fd/{fd}"));
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, &link).unwrap();
    }
    write(root, &format!("{app}/memory.min"), "67108864\n");
    write(root, &format!("{app}/memory.swap.max"), "max\n");
    write(root, &format!("{app}/pids.current"), "7\n");
    write(root, &format!("{app}/pids.max"), "max\n");
    write(
        root,
        &format!("{app}/cpu.pressure"),
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=1500000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=250000\n",
    );
    write(
        root,
        &format!("{app}/memory.pressure"),
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=2000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1000\n",
    );
    // A kernel before 5.13 has no `full` line for io and cpu: counted 0.
    write(
        root,
        &format!("{app}/io.pressure"),
        "some avg10=1.50 avg60=0.20 avg300=0.05 total=3000000\n",
    );
    let pause = format!("{pod}/cri-containerd-{PAUSE}.scope");
    write(
        root,
        &format!("{pause}/cpu.stat"),
        "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
    );
    write(root, &format!("{pause}/cpu.max"), "max 100000\n");
    write(root, &format!("{pause}/memory.current"), "1000000\n");
    write(
        root,
        &format!("{pause}/memory.stat"),
        "anon 500000\nfile 0\ninactive_file 2000000\n",
    );
    write(root, &format!("{pause}/memory.max"), "max\n");
    write(root, &format!("{pause}/cgroup.procs"), "4242\n");
    write(root, "proc/4242/net/dev", NET_DEV);
    write(root, "proc/4243/net/dev", NET_DEV);
    write(root, "proc/1/net/dev", NET_DEV);
    write(
        root,
        "proc/meminfo",
        "MemTotal:       16314452 kB\nMemFree:         1234567 kB\nSwapTotal:       2097148 kB\nSwapFree:        2000000 kB\n",
    );
    write(root, "proc/vmstat", "pgfault 1\noom_kill 7\n");
    write(root, "proc/sys/kernel/random/boot_id", "boot-1\n");
    write(root, "etc/machine-id", "machine-1\n");
    write(root, "sys/class/dmi/id/product_uuid", "uuid-1\n");
    write(root, "sys/block/sda/dev", "8:0\n");
    for c in 0..4 {
        std::fs::create_dir_all(root.join(format!("sys/devices/system/cpu/cpu{c}"))).unwrap();
    }
    std::fs::create_dir_all(root.join("sys/devices/system/cpu/cpufreq")).unwrap();
}

fn start(name: &str, dir: &Path, args: &[String]) -> (Proc, String) {
    let port = free_port();
    let mut a = vec![
        "container-metrics".to_string(),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    a.extend_from_slice(args);
    let p = spawn(name, &vigil_bin(), &a, dir);
    let url = format!("http://127.0.0.1:{port}/metrics");
    wait_http(&url);
    (p, url)
}

#[test]
fn cgroup_v2_node_named_through_the_api() {
    let dir = temp_dir("cm-v2");
    let root = dir.join("node");
    v2_node(&root);
    let k = FakeKube::start();
    k.apply(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "shop", "uid": UID},
        "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "nginx:1.25"}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "web", "image": "docker.io/library/nginx:1.25",
            "imageID": "", "containerID": format!("containerd://{APP}"), "ready": true, "restartCount": 2,
            "state": {"running": {}}}]}
    }));
    let (_p, url) = start(
        "cm-v2",
        &dir,
        &[
            format!("--path.sysfs={}", root.join("sys").display()),
            format!("--path.procfs={}", root.join("proc").display()),
            format!("--path.rootfs={}", root.display()),
            format!("--apiserver={}", k.url()),
            "--node-name=node-1".into(),
        ],
    );
    let pod_id = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
        UID.replace('-', "_")
    );
    let app = format!(
        r#"container="web",id="{pod_id}/cri-containerd-{APP}.scope",image="docker.io/library/nginx:1.25",name="{APP}",namespace="shop",pod="web-0""#
    );
    let sandbox = format!(
        r#"container="",id="{pod_id}/cri-containerd-{PAUSE}.scope",image="",name="{PAUSE}",namespace="shop",pod="web-0""#
    );
    let pod =
        format!(r#"container="",id="{pod_id}",image="",name="",namespace="shop",pod="web-0""#);
    let root_l = r#"container="",id="/",image="",name="",namespace="",pod="""#;
    // The API's names arrive through the watch.
    let s = wait_for("pod names from the API", Duration::from_secs(15), || {
        let s = samples(&get(&url).1);
        s.contains_key(&format!("container_memory_rss{{{app}}}"))
            .then_some(s)
    });
    let app_cpu = format!(
        r#"container="web",cpu="total",id="{pod_id}/cri-containerd-{APP}.scope",image="docker.io/library/nginx:1.25",name="{APP}",namespace="shop",pod="web-0""#
    );
    let want: Vec<(String, &str)> = vec![
        (
            format!("container_cpu_usage_seconds_total{{{app_cpu}}}"),
            "183.45321",
        ),
        (
            format!("container_cpu_user_seconds_total{{{app}}}"),
            "120.345678",
        ),
        (
            format!("container_cpu_system_seconds_total{{{app}}}"),
            "63.107532",
        ),
        (format!("container_cpu_cfs_periods_total{{{app}}}"), "51234"),
        (
            format!("container_cpu_cfs_throttled_periods_total{{{app}}}"),
            "1203",
        ),
        (
            format!("container_cpu_cfs_throttled_seconds_total{{{app}}}"),
            "45.678901",
        ),
        (
            format!("container_memory_usage_bytes{{{app}}}"),
            "1.0747904e+08",
        ),
        (
            format!("container_memory_working_set_bytes{{{app}}}"),
            "8.650752e+07",
        ),
        (format!("container_memory_rss{{{app}}}"), "7.340032e+07"),
        (format!("container_memory_cache{{{app}}}"), "3.145728e+07"),
        (format!("container_memory_swap{{{app}}}"), "4096"),
        (format!("container_memory_failcnt{{{app}}}"), "0"),
        (
            format!("container_memory_max_usage_bytes{{{app}}}"),
            "1.2e+08",
        ),
        (
            format!("container_spec_memory_limit_bytes{{{app}}}"),
            "2.68435456e+08",
        ),
        (format!("container_spec_cpu_quota{{{app}}}"), "200000"),
        (format!("container_spec_cpu_period{{{app}}}"), "100000"),
        (format!("container_spec_cpu_shares{{{app}}}"), "998"),
        (format!("container_processes{{{app}}}"), "2"),
        (format!("container_file_descriptors{{{app}}}"), "5"),
        (format!("container_sockets{{{app}}}"), "2"),
        (format!("container_threads{{{app}}}"), "7"),
        (format!("container_threads_max{{{app}}}"), "0"),
        (
            format!("container_spec_memory_reservation_limit_bytes{{{app}}}"),
            "6.7108864e+07",
        ),
        (
            format!("container_spec_memory_swap_limit_bytes{{{app}}}"),
            "0",
        ),
        (
            format!("container_memory_mapped_file{{{app}}}"),
            "8.388608e+06",
        ),
        (format!("container_memory_kernel_usage{{{app}}}"), "0"),
        (
            format!("container_memory_total_active_file_bytes{{{app}}}"),
            "1.048576e+07",
        ),
        (
            format!("container_memory_total_inactive_file_bytes{{{app}}}"),
            "2.097152e+07",
        ),
        (
            format!(
                r#"container_memory_failures_total{{container="web",failure_type="pgfault",id="{pod_id}/cri-containerd-{APP}.scope",image="docker.io/library/nginx:1.25",name="{APP}",namespace="shop",pod="web-0",scope="container"}}"#
            ),
            "48213",
        ),
        (
            format!(
                r#"container_memory_failures_total{{container="web",failure_type="pgmajfault",id="{pod_id}/cri-containerd-{APP}.scope",image="docker.io/library/nginx:1.25",name="{APP}",namespace="shop",pod="web-0",scope="hierarchy"}}"#
            ),
            "17",
        ),
        (
            format!("container_pressure_cpu_waiting_seconds_total{{{app}}}"),
            "1.5",
        ),
        (
            format!("container_pressure_cpu_stalled_seconds_total{{{app}}}"),
            "0.25",
        ),
        (
            format!("container_pressure_memory_waiting_seconds_total{{{app}}}"),
            "0.002",
        ),
        (
            format!("container_pressure_memory_stalled_seconds_total{{{app}}}"),
            "0.001",
        ),
        (
            format!("container_pressure_io_waiting_seconds_total{{{app}}}"),
            "3",
        ),
        (
            format!("container_pressure_io_stalled_seconds_total{{{app}}}"),
            "0",
        ),
        (
            format!(
                r#"container_fs_reads_bytes_total{{container="web",device="/dev/sda",id="{pod_id}/cri-containerd-{APP}.scope",image="docker.io/library/nginx:1.25",name="{APP}",namespace="shop",pod="web-0"}}"#
            ),
            "9.0430464e+07",
        ),
        (
            format!(
                r#"container_fs_writes_total{{container="web",device="",id="{pod_id}/cri-containerd-{APP}.scope",image="docker.io/library/nginx:1.25",name="{APP}",namespace="shop",pod="web-0"}}"#
            ),
            "353",
        ),
        // The pod's network is on its sandbox; veth and lo are not reported.
        (
            format!(
                r#"container_network_receive_bytes_total{{container="",id="{pod_id}/cri-containerd-{PAUSE}.scope",image="",interface="eth0",name="{PAUSE}",namespace="shop",pod="web-0"}}"#
            ),
            "9.876543e+06",
        ),
        (
            format!(
                r#"container_network_transmit_errors_total{{container="",id="{pod_id}/cri-containerd-{PAUSE}.scope",image="",interface="eth0",name="{PAUSE}",namespace="shop",pod="web-0"}}"#
            ),
            "3",
        ),
        // Dropped packets: /proc/net/dev's `drop` columns, as cAdvisor reads them.
        (
            format!(
                r#"container_network_receive_packets_dropped_total{{container="",id="{pod_id}/cri-containerd-{PAUSE}.scope",image="",interface="eth0",name="{PAUSE}",namespace="shop",pod="web-0"}}"#
            ),
            "2",
        ),
        (
            format!(
                r#"container_network_transmit_packets_dropped_total{{container="",id="{pod_id}/cri-containerd-{PAUSE}.scope",image="",interface="eth0",name="{PAUSE}",namespace="shop",pod="web-0"}}"#
            ),
            "5",
        ),
        // inactive_file above usage: a working set of 0, not negative.
        (
            format!("container_memory_working_set_bytes{{{sandbox}}}"),
            "0",
        ),
        (
            format!("container_spec_memory_limit_bytes{{{sandbox}}}"),
            "0",
        ),
        (
            format!("container_memory_usage_bytes{{{pod}}}"),
            "1.0747904e+08",
        ),
        (format!("container_oom_events_total{{{app}}}"), "2"),
        // The root: the machine's OOM kills (`/proc/vmstat`).
        (format!("container_oom_events_total{{{root_l}}}"), "7"),
        // The root: usage from memory.stat's anon + file, swap from meminfo, limit = MemTotal.
        (
            format!("container_memory_usage_bytes{{{root_l}}}"),
            "1.048576e+08",
        ),
        (
            format!("container_memory_swap{{{root_l}}}"),
            "9.9479552e+07",
        ),
        (
            format!("container_spec_memory_limit_bytes{{{root_l}}}"),
            "1.6705998848e+10",
        ),
        (
            r#"machine_memory_bytes{boot_id="boot-1",machine_id="machine-1",system_uuid="uuid-1"}"#
                .into(),
            "1.6705998848e+10",
        ),
        (
            r#"machine_cpu_cores{boot_id="boot-1",machine_id="machine-1",system_uuid="uuid-1"}"#
                .into(),
            "4",
        ),
    ];
    for (k, v) in &want {
        assert_eq!(s.get(k).map(String::as_str), Some(*v), "{k}");
    }
    // No limit: no quota and no CFS series; zero usage: no cpu series; only the sandbox and the
    // root report network; the app container's network is not counted twice.
    assert!(!s.contains_key(&format!("container_spec_cpu_quota{{{sandbox}}}")));
    assert!(!s.contains_key(&format!("container_cpu_cfs_periods_total{{{pod}}}")));
    // No PSI files (a kernel without PSI, or cgroup v1): no pressure series.
    assert!(!s.contains_key(&format!(
        "container_pressure_cpu_waiting_seconds_total{{{sandbox}}}"
    )));
    assert!(
        !s.keys()
            .any(|k| k.starts_with("container_cpu_usage_seconds_total") && k.contains(PAUSE))
    );
    let net: Vec<&String> = s
        .keys()
        .filter(|k| k.starts_with("container_network_receive_bytes_total"))
        .collect();
    assert_eq!(net.len(), 2, "{net:?}");
    assert!(
        !s.keys()
            .any(|k| k.contains("interface=\"lo\"") || k.contains("interface=\"veth"))
    );
    // The exposition is what vigil's scraper accepts.
    let v = Vigil::start(
        "cm-scraper",
        Some(&format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: cadvisor\n    static_configs:\n      - targets: ['{}']\n",
            url.trim_start_matches("http://")
                .trim_end_matches("/metrics")
        )),
        &[],
    );
    wait_for("scraped", Duration::from_secs(20), || {
        let r = query(
            &v.base,
            r#"sum by (namespace) (container_memory_working_set_bytes{container!=""})"#,
        );
        (r.len() == 1 && r[0]["metric"]["namespace"] == "shop").then_some(())
    });
    let up = query(&v.base, "up");
    assert_eq!(up[0]["value"][1], "1");
}

#[test]
fn cgroup_v1_node_without_the_api() {
    let dir = temp_dir("cm-v1");
    let root = dir.join("node");
    let pod = format!("kubepods/besteffort/pod{UID}/{APP}");
    for (ctl, files) in [
        (
            "cpuacct",
            vec![
                ("cpuacct.usage", "183453210000\n"),
                // The kernel pads to the possible CPUs with zeros.
                (
                    "cpuacct.usage_percpu",
                    "120000000000 63453210000 0 0 0 0 0 0 \n",
                ),
                ("cpuacct.stat", "user 12034\nsystem 6310\n"),
                ("cgroup.procs", "77\n"),
            ],
        ),
        (
            "cpu",
            vec![
                ("cpu.shares", "2\n"),
                ("cpu.cfs_quota_us", "-1\n"),
                ("cpu.cfs_period_us", "100000\n"),
            ],
        ),
        (
            "memory",
            vec![
                ("memory.usage_in_bytes", "107479040\n"),
                ("memory.max_usage_in_bytes", "120000000\n"),
                ("memory.failcnt", "3\n"),
                (
                    "memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n",
                ),
                ("memory.limit_in_bytes", "9223372036854771712\n"),
                (
                    "memory.stat",
                    "cache 1\nrss 2\ntotal_cache 31457280\ntotal_rss 73400320\ntotal_swap 0\ntotal_inactive_file 20971520\n",
                ),
            ],
        ),
        (
            "blkio",
            vec![
                (
                    "blkio.throttle.io_service_bytes",
                    "8:0 Read 1282048\n8:0 Write 2195456\n8:0 Sync 2195456\n8:0 Total 3477504\nTotal 3477504\n",
                ),
                (
                    "blkio.throttle.io_serviced",
                    "8:0 Read 10\n8:0 Write 20\nTotal 30\n",
                ),
            ],
        ),
    ] {
        for (f, text) in files {
            write(&root, &format!("sys/fs/cgroup/{ctl}/{pod}/{f}"), text);
        }
        write(&root, &format!("sys/fs/cgroup/{ctl}/cgroup.procs"), "1\n");
    }
    write(&root, "sys/block/sda/dev", "8:0\n");
    write(&root, "proc/meminfo", "MemTotal:       16314452 kB\n");
    write(&root, "proc/77/net/dev", NET_DEV);
    let (_p, url) = start(
        "cm-v1",
        &dir,
        &[
            format!("--path.sysfs={}", root.join("sys").display()),
            format!("--path.procfs={}", root.join("proc").display()),
            format!("--path.rootfs={}", root.display()),
        ],
    );
    let s = samples(&get(&url).1);
    // Without the API only the path's ids are known.
    let l = format!(r#"container="",id="/{pod}",image="",name="{APP}",namespace="",pod="""#);
    let cpu = format!(
        r#"container="",cpu="total",id="/{pod}",image="",name="{APP}",namespace="",pod="""#
    );
    for (k, v) in [
        (
            format!("container_cpu_usage_seconds_total{{{cpu}}}"),
            "183.45321",
        ),
        (format!("container_cpu_user_seconds_total{{{l}}}"), "120.34"),
        (
            format!("container_memory_working_set_bytes{{{l}}}"),
            "8.650752e+07",
        ),
        (format!("container_memory_rss{{{l}}}"), "7.340032e+07"),
        (format!("container_memory_failcnt{{{l}}}"), "3"),
        (format!("container_oom_events_total{{{l}}}"), "4"),
        (format!("container_spec_memory_limit_bytes{{{l}}}"), "0"),
        (format!("container_spec_cpu_shares{{{l}}}"), "2"),
        (
            format!(
                r#"container_fs_reads_bytes_total{{container="",device="/dev/sda",id="/{pod}",image="",name="{APP}",namespace="",pod=""}}"#
            ),
            "1.282048e+06",
        ),
        (
            format!(
                r#"container_fs_writes_total{{container="",device="/dev/sda",id="/{pod}",image="",name="{APP}",namespace="",pod=""}}"#
            ),
            "20",
        ),
        // The pod's only container holds its network.
        (
            format!(
                r#"container_network_receive_packets_total{{container="",id="/{pod}",image="",interface="eth0",name="{APP}",namespace="",pod=""}}"#
            ),
            "6543",
        ),
    ] {
        assert_eq!(s.get(&k).map(String::as_str), Some(v), "{k}");
    }
    assert!(!s.keys().any(|k| k.starts_with("container_spec_cpu_quota")));

    // cAdvisor's own flags, as its DaemonSet manifests pass them.
    let port = free_port();
    let p = spawn(
        "cm-cadvisor-flags",
        &vigil_bin(),
        &[
            "container-metrics".into(),
            "--listen_ip=127.0.0.1".into(),
            format!("--port={port}"),
            "--prometheus_endpoint=/cadvisor".into(),
            "--enable_metrics=cpu,memory,network,diskIO,tcp,percpu".into(),
            "--disable_metrics=network,diskIO,tcp".into(),
            "--housekeeping_interval=10s".into(),
            "--store_container_labels=false".into(),
            "--v=2".into(),
            "--logtostderr".into(),
            format!("--path.sysfs={}", root.join("sys").display()),
            format!("--path.procfs={}", root.join("proc").display()),
            format!("--path.rootfs={}", root.display()),
        ],
        &dir,
    );
    let url = format!("http://127.0.0.1:{port}/cadvisor");
    wait_http(&url);
    let text = get(&url).1;
    assert!(
        text.contains("container_cpu_usage_seconds_total{"),
        "{text}"
    );
    assert!(text.contains("container_memory_rss{"), "{text}");
    for gone in [
        "container_network_",
        "container_fs_reads",
        "container_fs_writes",
    ] {
        assert!(
            !text.contains(gone),
            "--disable_metrics leaves out {gone}: {text}"
        );
    }
    // With percpu, usage per CPU replaces the total, one series per CPU this process may
    // run on that has used time (cAdvisor counts CPUs by its affinity mask).
    let allowed = allowed_cpus();
    let s = samples(&text);
    for (cpu, v) in [("cpu00", "120"), ("cpu01", "63.45321")] {
        let k = format!(
            r#"container_cpu_usage_seconds_total{{container="",cpu="{cpu}",id="/{pod}",image="",name="{APP}",namespace="",pod=""}}"#
        );
        let want = (cpu == "cpu00" || allowed >= 2).then_some(v);
        assert_eq!(s.get(&k).map(String::as_str), want, "{k}\n{text}");
    }
    assert!(
        !s.keys()
            .any(|k| k.starts_with("container_cpu_usage_seconds_total")
                && k.contains(APP)
                && (k.contains(r#"cpu="total""#) || k.contains(r#"cpu="cpu02""#))),
        "{text}"
    );
    let log = p.log_text();
    assert!(log.contains("--housekeeping_interval: no effect"), "{log}");
    assert!(
        !log.contains("does not collect"),
        "percpu is collected: {log}"
    );
    assert!(
        !log.contains("store_container_labels"),
        "false is what vigil does: {log}"
    );
    // An unknown kind is refused by name, as cAdvisor refuses it.
    let out = std::process::Command::new(vigil_bin())
        .args(["container-metrics", "--disable_metrics=cpu,widgets"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--disable_metrics: unsupported metric kind \"widgets\""),
        "{err}"
    );
}

#[test]
fn this_machines_own_cgroups() {
    let dir = temp_dir("cm-host");
    let (_p, url) = start("cm-host", &dir, &["--all-cgroups".into()]);
    let (code, text) = get(&url);
    assert_eq!(code, 200);
    let s = samples(&text);
    let root_usage: f64 = s
        .iter()
        .find(|(k, _)| k.starts_with("container_memory_usage_bytes{") && k.contains(r#"id="/""#))
        .map(|(_, v)| v.parse().unwrap())
        .expect("the root cgroup's memory usage");
    assert!(root_usage > 0.0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total_kb: f64 = meminfo
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let machine: f64 = s
        .iter()
        .find(|(k, _)| k.starts_with("machine_memory_bytes{"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap();
    assert_eq!(machine, total_kb * 1024.0);
    let cores: f64 = s
        .iter()
        .find(|(k, _)| k.starts_with("machine_cpu_cores{"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let processors = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    assert_eq!(cores, processors as f64);
    // Every cgroup directory of the machine's cpu accounting tree is a series. Cgroups come and
    // go (other tests, transient units): those present both before and after the scrape must be
    // there, and nothing else but what existed at one of those moments.
    let tree = match std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        true => std::path::PathBuf::from("/sys/fs/cgroup"),
        false => ["cpu,cpuacct", "cpuacct", "cpu"]
            .iter()
            .map(|c| std::path::Path::new("/sys/fs/cgroup").join(c))
            .find(|p| p.is_dir())
            .unwrap(),
    };
    let ids = |tree: &std::path::Path| -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::from(["/".to_string()]);
        let mut stack = vec![tree.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if e.file_type().is_ok_and(|t| t.is_dir()) && !name.ends_with(".mount") {
                    out.insert(format!(
                        "/{}",
                        e.path().strip_prefix(tree).unwrap().display()
                    ));
                    stack.push(e.path());
                }
            }
        }
        out
    };
    let before = ids(&tree);
    let (_, text) = get(&url);
    let after = ids(&tree);
    let seen: std::collections::BTreeSet<String> = samples(&text)
        .keys()
        .filter(|k| k.starts_with("container_last_seen{"))
        .filter_map(|k| Some(k.split("id=\"").nth(1)?.split('"').next()?.to_string()))
        .collect();
    for id in before.intersection(&after) {
        assert!(seen.contains(id), "cgroup {id} has no series");
    }
    for id in &seen {
        assert!(
            before.contains(id) || after.contains(id),
            "series for unknown cgroup {id}"
        );
    }
}

/// CPUs this process may run on, from `Cpus_allowed_list` (e.g. `0-3,6`).
fn allowed_cpus() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim();
    list.split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum()
}

/// A series key of [`samples`] split into its name and labels.
fn series(key: &str) -> (String, std::collections::BTreeMap<String, String>) {
    let (name, rest) = key.split_once('{').unwrap_or((key, "}"));
    let mut labels = std::collections::BTreeMap::new();
    let mut chars = rest.trim_end_matches('}').chars().peekable();
    loop {
        let k: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if k.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'));
        let mut v = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => v.push('\n'),
                    Some(o) => v.push(o),
                    None => break,
                },
                '"' => break,
                o => v.push(o),
            }
        }
        labels.insert(k.trim_start_matches(',').to_string(), v);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    (name.to_string(), labels)
}

/// Device numbers of a `st_dev`, as glibc's `major`/`minor` split them.
fn dev_numbers(dev: u64) -> (u64, u64) {
    (
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
        (dev & 0xff) | ((dev >> 12) & !0xff),
    )
}

/// The root's filesystems on a built node: the mounts, disk counters and root cgroup I/O are
/// written in a directory, the sizes are the real ones of the filesystem holding it.
#[test]
fn root_filesystems_on_a_built_node() {
    use std::os::unix::fs::MetadataExt;
    let dir = temp_dir("cm-fs-built");
    let root = dir.join("node");
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::create_dir_all(root.join("data2")).unwrap();
    let (ma, mi) = dev_numbers(std::fs::metadata(&root).unwrap().dev());
    // Numbers no directory here can have: /data2 is "mounted" as another filesystem.
    let stale = mi + 1_000_000;
    write(
        &root,
        "proc/1/mountinfo",
        &format!(
            "1 0 {ma}:{mi} / / rw - ext4 /dev/vdz1 rw\n\
             2 1 {ma}:{mi} /data /data rw - ext4 /dev/vdz1 rw\n\
             3 1 {ma}:{mi} / /gone rw - xfs /dev/sdq1 rw\n\
             4 1 {ma}:{stale} / /data2 rw - xfs /dev/sdr1 rw\n\
             5 1 0:21 / /proc rw - proc proc rw\n"
        ),
    );
    write(
        &root,
        "proc/diskstats",
        &format!(" {ma} {mi} vdz1 1 2 3 4 5 6 7 8 9 10 11\n 7 0 loop0 9 9 9 9 9 9 9 9 9 9 9\n"),
    );
    write(&root, "proc/meminfo", "MemTotal:       16314452 kB\n");
    // The disk under the filesystem: the root cgroup's I/O is named after the filesystem
    // first, so this name is not used for it.
    write(&root, "sys/block/vdz/dev", &format!("{ma}:{mi}\n"));
    for (f, text) in [
        (
            "blkio/blkio.throttle.io_service_bytes",
            format!("{ma}:{mi} Read 5000\n{ma}:{mi} Write 6000\nTotal 11000\n"),
        ),
        (
            "blkio/blkio.throttle.io_serviced",
            format!("{ma}:{mi} Read 50\n{ma}:{mi} Write 60\nTotal 110\n"),
        ),
        ("cpuacct/cpuacct.usage", "1000000000\n".to_string()),
        ("cpuacct/cgroup.procs", "1\n".to_string()),
        ("memory/memory.usage_in_bytes", "1000\n".to_string()),
    ] {
        write(&root, &format!("sys/fs/cgroup/{f}"), &text);
    }
    let paths = [
        format!("--path.sysfs={}", root.join("sys").display()),
        format!("--path.procfs={}", root.join("proc").display()),
        format!("--path.rootfs={}", root.display()),
    ];
    let (_p, url) = start("cm-fs-built", &dir, &paths);
    let (code, text) = get(&url);
    assert_eq!(code, 200);
    let s = samples(&text);
    let at = |name: &str, device: &str| -> Option<f64> {
        s.get(&format!(
            r#"{name}{{container="",device="{device}",id="/",image="",name="",namespace="",pod=""}}"#
        ))
        .map(|v| v.parse().unwrap())
    };
    // The root's ext4, once (the bind mount of its source is not another entry).
    // (Sizes are the real filesystem's, whatever it is: only their presence and order is
    // checked here; root_filesystems_agree_with_node_exporter checks values.)
    let limit = at("container_fs_limit_bytes", "/dev/vdz1").expect(&text);
    let usage = at("container_fs_usage_bytes", "/dev/vdz1").unwrap();
    assert!(usage <= limit, "{text}");
    assert!(at("container_fs_inodes_total", "/dev/vdz1").is_some());
    assert!(at("container_fs_inodes_free", "/dev/vdz1").is_some());
    // A mount point gone since (no directory) and one that is not its filesystem any more
    // (the directory is on the parent's) are left out; proc is not a counted type.
    for gone in ["/dev/sdq1", "/dev/sdr1", "proc"] {
        assert!(
            !text.contains(&format!(r#"device="{gone}""#)),
            "{gone}:\n{text}"
        );
    }
    // Disk counters from diskstats, the times as cAdvisor scales them (ms / 1e9).
    for (name, want) in [
        ("container_fs_reads_merged_total", 2.0),
        ("container_fs_sector_reads_total", 3.0),
        ("container_fs_read_seconds_total", 4e-9),
        ("container_fs_writes_merged_total", 6.0),
        ("container_fs_sector_writes_total", 7.0),
        ("container_fs_write_seconds_total", 8e-9),
        ("container_fs_io_current", 9.0),
        ("container_fs_io_time_seconds_total", 1e-8),
        ("container_fs_io_time_weighted_seconds_total", 1.1e-8),
    ] {
        assert_eq!(at(name, "/dev/vdz1"), Some(want), "{name}\n{text}");
    }
    // The root cgroup's I/O is named after the filesystem on its device, and its reads and
    // writes win over the filesystem's (one series each, as the kubelet keeps the first).
    assert_eq!(
        at("container_fs_reads_bytes_total", "/dev/vdz1"),
        Some(5000.0)
    );
    assert_eq!(at("container_fs_reads_total", "/dev/vdz1"), Some(50.0));
    assert_eq!(at("container_fs_writes_total", "/dev/vdz1"), Some(60.0));
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("container_fs_reads_total{") && l.contains(r#"id="/""#))
            .count(),
        1,
        "{text}"
    );

    assert!(!text.contains(r#"device="/dev/vdz""#), "{text}");
    // Without the disk kind: no filesystem families; the root cgroup's devices are still
    // named after its filesystems (cAdvisor lists them for disk I/O too).
    let (_q, url) = start(
        "cm-fs-built-nodisk",
        &dir,
        &[&paths[..], &["--disable_metrics=disk".to_string()]].concat(),
    );
    let text = get(&url).1;
    assert!(!text.contains("container_fs_limit_bytes"), "{text}");
    assert!(!text.contains("container_fs_reads_merged_total"), "{text}");
    assert!(
        text.contains(
            r#"container_fs_reads_total{container="",device="/dev/vdz1",id="/",image="",name="",namespace="",pod=""} 50"#
        ),
        "{text}"
    );
}

/// The root's filesystems on this machine, against Debian's node exporter reading the same
/// mounts and disks: sizes, usage and inodes within its readings just before and after, and
/// each disk counter between them.
#[test]
fn root_filesystems_agree_with_node_exporter() {
    let dir = temp_dir("cm-fs");
    // Mounts made after vigil starts are not in its list (as in the kubelet): only those
    // there before are compared.
    let mounted_before: std::collections::BTreeSet<String> =
        std::fs::read_to_string("/proc/1/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(|m| m.replace("\\040", " ")))
            .collect();
    let ne_port = free_port();
    let _ne = spawn(
        "node-exporter",
        &debian_bin("prometheus-node-exporter"),
        &[
            format!("--web.listen-address=127.0.0.1:{ne_port}"),
            "--collector.disable-defaults".into(),
            "--collector.filesystem".into(),
            "--collector.diskstats".into(),
            "--collector.filesystem.mount-points-exclude=^/(proc|sys)($|/)".into(),
            // Partitions too (node_exporter leaves them out by default).
            r"--collector.diskstats.device-exclude=^(ram|loop|fd)\d+$".into(),
        ],
        &dir,
    );
    let ne_url = format!("http://127.0.0.1:{ne_port}/metrics");
    wait_http(&ne_url);
    let (_p, url) = start("cm-fs", &dir, &[]);
    type Set = Vec<(String, std::collections::BTreeMap<String, String>, f64)>;
    let parsed = |text: &str| -> Set {
        samples(text)
            .into_iter()
            .map(|(k, v)| {
                let (n, l) = series(&k);
                (n, l, v.parse::<f64>().unwrap())
            })
            .collect()
    };
    let n1 = parsed(&get(&ne_url).1);
    let (code, text) = get(&url);
    assert_eq!(code, 200);
    let v = parsed(&text);
    let n2 = parsed(&get(&ne_url).1);
    let ne = |set: &Set, name: &str, want: &[(&str, &str)]| -> Option<f64> {
        set.iter()
            .find(|(n, l, _)| {
                n == name
                    && want
                        .iter()
                        .all(|(k, x)| l.get(*k).map(String::as_str) == Some(*x))
            })
            .map(|s| s.2)
    };
    let root = |name: &str, device: &str| ne(&v, name, &[("id", "/"), ("device", device)]);
    let within =
        |x: f64, a: f64, b: f64, slack: f64| x >= a.min(b) - slack && x <= a.max(b) + slack;

    let mut compared = 0;
    let mut root_compared = false;
    for (name, l, _) in &n1 {
        if name != "node_filesystem_size_bytes" {
            continue;
        }
        let fstype = l["fstype"].as_str();
        // overlay mounts are named by device numbers node_exporter does not print.
        let counted = fstype.starts_with("ext")
            || fstype.starts_with("nfs")
            || ["btrfs", "tmpfs", "xfs", "zfs"].contains(&fstype);
        let mp = l["mountpoint"].as_str();
        if !counted || !mounted_before.contains(mp) {
            continue;
        }
        let device = if fstype == "tmpfs" {
            mp
        } else {
            l["device"].as_str()
        };
        let at = [("device", l["device"].as_str()), ("mountpoint", mp)];
        let both = |metric: &str| {
            (
                ne(&n1, metric, &at).unwrap(),
                ne(&n2, metric, &at).unwrap_or(f64::NAN),
            )
        };
        let (s1, s2) = both("node_filesystem_size_bytes");
        let limit = root("container_fs_limit_bytes", device)
            .unwrap_or_else(|| panic!("no container_fs_limit_bytes for {device} ({mp}):\n{text}"));
        assert!(
            within(limit, s1, s2, 0.0),
            "{device} ({mp}) size {limit} against {s1} .. {s2}"
        );
        let (f1, f2) = both("node_filesystem_files");
        let files = root("container_fs_inodes_total", device).unwrap();
        assert!(
            within(files, f1, f2, 0.0),
            "{device} inodes {files} against {f1} .. {f2}"
        );
        // Usage is size less free, as cAdvisor counts it (not less what non-root may use).
        let (free1, free2) = both("node_filesystem_free_bytes");
        let usage = root("container_fs_usage_bytes", device).unwrap();
        let slack = (s1 * 0.001).max(64.0 * 1024.0 * 1024.0);
        assert!(
            within(usage, s1 - free1, s2 - free2, slack),
            "{device} usage {usage} against {} .. {}",
            s1 - free1,
            s2 - free2
        );
        let (i1, i2) = both("node_filesystem_files_free");
        let free = root("container_fs_inodes_free", device).unwrap();
        assert!(within(free, i1, i2, 1000.0), "{device} free inodes {free}");
        compared += 1;
        root_compared |= mp == "/";
    }
    assert!(compared > 0, "no filesystem compared:\n{text}");
    let root_type = std::fs::read_to_string("/proc/1/mountinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .and_then(|l| l.split(" - ").nth(1)?.split(' ').next().map(str::to_string))
        .unwrap_or_default();
    if root_type.starts_with("ext") || root_type == "xfs" || root_type == "btrfs" {
        assert!(
            root_compared,
            "the / filesystem ({root_type}) was not compared"
        );
    }

    // Disk counters of the root's filesystems, by node_exporter's name for the disk
    // (`/dev/mapper/x` is its `dm-N`). Only the families that come from diskstats alone are
    // walked; reads and writes also when no root cgroup I/O series took the device's name.
    let mut disks = 0;
    for (name, l, _) in &v {
        if name != "container_fs_reads_merged_total" || l["id"] != "/" {
            continue;
        }
        let dev = l["device"].as_str();
        let Some(disk) = std::fs::canonicalize(dev)
            .ok()
            .and_then(|p| Some(p.strip_prefix("/dev").ok()?.to_str()?.to_string()))
        else {
            continue;
        };
        let d = [("device", disk.as_str())];
        if ne(&n1, "node_disk_reads_completed_total", &d).is_none() {
            continue;
        }
        let mut families = vec![
            (
                "container_fs_reads_merged_total",
                "node_disk_reads_merged_total",
                1.0,
            ),
            (
                "container_fs_writes_merged_total",
                "node_disk_writes_merged_total",
                1.0,
            ),
            // Sectors of 512 bytes.
            (
                "container_fs_sector_reads_total",
                "node_disk_read_bytes_total",
                512.0,
            ),
            (
                "container_fs_sector_writes_total",
                "node_disk_written_bytes_total",
                512.0,
            ),
            // Milliseconds, divided by 1e9 by cAdvisor and by 1e3 by node_exporter.
            (
                "container_fs_read_seconds_total",
                "node_disk_read_time_seconds_total",
                1e6,
            ),
            (
                "container_fs_write_seconds_total",
                "node_disk_write_time_seconds_total",
                1e6,
            ),
            (
                "container_fs_io_time_seconds_total",
                "node_disk_io_time_seconds_total",
                1e6,
            ),
            (
                "container_fs_io_time_weighted_seconds_total",
                "node_disk_io_time_weighted_seconds_total",
                1e6,
            ),
        ];
        if root("container_fs_reads_bytes_total", dev).is_none() {
            families.push((
                "container_fs_reads_total",
                "node_disk_reads_completed_total",
                1.0,
            ));
            families.push((
                "container_fs_writes_total",
                "node_disk_writes_completed_total",
                1.0,
            ));
        }
        for (ours, theirs, scale) in families {
            let x = root(ours, dev).unwrap_or_else(|| panic!("no {ours} for {dev}")) * scale;
            let (a, b) = (ne(&n1, theirs, &d).unwrap(), ne(&n2, theirs, &d).unwrap());
            assert!(
                within(x, a, b, b.abs() * 1e-9),
                "{ours} {dev}: {x} against {a} .. {b}"
            );
        }
        disks += 1;
    }
    let is_disk = |dev: &str| {
        let name = dev.trim_start_matches("/dev/");
        ["sd", "vd", "xvd", "dm-"]
            .iter()
            .any(|p| name.starts_with(p))
    };
    let root_device = v.iter().find(|(n, l, _)| {
        n == "container_fs_limit_bytes" && l["id"] == "/" && is_disk(&l["device"])
    });
    if root_compared && root_device.is_some() {
        assert!(disks > 0, "no disk compared:\n{text}");
    }
}
