//! `vigil kube-state` against the fake API server seeded with chapter 14's apps plus a crashing
//! pod with resources: the exact kube-state-metrics lines (names, label order, values as Go
//! prints them), updates and deletions followed through the watch, and vigil scraping it so the
//! built-in Kubernetes dashboard's queries have data.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use support::*;
use vigil_kube_fake::manifests::{chapter14, deployment};
use vigil_kube_fake::{FakeKube, Res};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/kiamol-ch14"
);

fn crashy() -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "crashy", "namespace": "kiamol-ch14-test", "uid": "uid-crashy",
                     "labels": {"app": "crashy", "pod-template-hash": "abc"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "crashy-rs",
                                          "uid": "uid-rs", "controller": true}]},
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "kiamol/crash:1",
                 "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}}}]},
        "status": {"phase": "Running", "hostIP": "192.168.49.2", "podIP": "127.0.1.50",
                   "conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}],
                   "containerStatuses": [{"name": "app", "image": "docker.io/kiamol/crash:1",
                       "imageID": "docker.io/kiamol/crash@sha256:1", "containerID": "containerd://abc",
                       "ready": false, "restartCount": 5,
                       "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                       "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}}]}
    })
}

/// `vigil kube-state` on the API server at `apiserver` with `extra` flags, listening on a free
/// port, once it is ready (every resource listed): the process and its port.
fn kube_state_ready(dir: &Path, apiserver: &str, extra: &[&str]) -> (Proc, u16) {
    let port = free_port();
    let mut args = vec![
        "kube-state".to_string(),
        "--telemetry-host=127.0.0.1".into(),
        format!("--telemetry-port={}", free_port()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        format!("--apiserver={apiserver}"),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let p = spawn("vigil-kube-state", &vigil_bin(), &args, dir);
    wait_for("synced", Duration::from_secs(20), || {
        http("GET", &format!("http://127.0.0.1:{port}/readyz"), None)
            .ok()
            .filter(|(c, _)| *c == 200)
    });
    (p, port)
}

#[test]
fn kube_state_metrics_from_the_fake_api() {
    let dir = temp_dir("kube-state");
    let k = FakeKube::start();
    let apps = chapter14(&k, Path::new(FIXTURES), "127.0.1");
    k.apply(crashy());
    // A ConfigMap and a Secret: metadata (and the secret's type) only, never their data.
    let cm = k.apply(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "app-config", "namespace": "kiamol-ch14-test", "labels": {"team": "web"}},
        "data": {"setting": "config-value-never-exported"}
    }));
    let secret = k.apply(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "db-password", "namespace": "kiamol-ch14-test", "labels": {"team": "data"},
                     "annotations": {"owner": "dba",
                                     "kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"password\":\"c2VjcmV0LW5ldmVyLWV4cG9ydGVk\"}}"}},
        "data": {"password": "c2VjcmV0LW5ldmVyLWV4cG9ydGVk"}
    }));
    k.apply(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-7d9f", "namespace": "kiamol-ch14-test", "generation": 3,
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                          "uid": "uid-web", "controller": true}]},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
        "status": {"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 1, "observedGeneration": 3}
    }));
    k.apply(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "node-agent", "namespace": "kiamol-ch14-test", "generation": 2},
        "spec": {"selector": {"matchLabels": {"app": "node-agent"}}},
        "status": {"currentNumberScheduled": 3, "desiredNumberScheduled": 3, "numberAvailable": 2,
                   "numberMisscheduled": 1, "numberReady": 2, "numberUnavailable": 1,
                   "observedGeneration": 2, "updatedNumberScheduled": 3}
    }));
    k.apply(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "kiamol-ch14-test", "generation": 4},
        "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Delete"}},
        "status": {"replicas": 3, "availableReplicas": 2, "currentReplicas": 3, "readyReplicas": 2,
                   "updatedReplicas": 1, "observedGeneration": 4,
                   "currentRevision": "db-5f6", "updateRevision": "db-7a8"}
    }));
    for job in [
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "backup-29", "namespace": "kiamol-ch14-test",
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "backup",
                                              "uid": "uid-backup", "controller": true}]},
            "spec": {"parallelism": 1, "completions": 1, "activeDeadlineSeconds": 900,
                     "template": {"spec": {"containers": [], "restartPolicy": "Never"}}},
            "status": {"failed": 1, "startTime": "2026-11-30T10:00:07Z",
                       "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}
        }),
        // Failed pods without a Failed condition: the count goes to reason="".
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "migrate", "namespace": "kiamol-ch14-test"},
            "spec": {"template": {"spec": {"containers": [], "restartPolicy": "Never"}}},
            "status": {"failed": 2, "active": 1, "ready": 1, "startTime": "2026-11-30T10:00:07Z"}
        }),
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "done", "namespace": "kiamol-ch14-test"},
            "spec": {"template": {"spec": {"containers": [], "restartPolicy": "Never"}}},
            "status": {"succeeded": 1, "startTime": "2026-11-30T10:00:07Z", "completionTime": "2026-11-30T10:01:07Z",
                       "conditions": [{"type": "Complete", "status": "True"}]}
        }),
        json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "backup", "namespace": "kiamol-ch14-test"},
            "spec": {"schedule": "0 */6 * * *", "timeZone": "Asia/Shanghai", "concurrencyPolicy": "Forbid",
                     "suspend": false, "startingDeadlineSeconds": 300, "successfulJobsHistoryLimit": 3,
                     "failedJobsHistoryLimit": 1, "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}},
            "status": {"lastScheduleTime": "2018-03-11T04:34:56Z", "active": [{"kind": "Job", "name": "backup-29"}]}
        }),
        json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "broken", "namespace": "kiamol-ch14-test"},
            "spec": {"schedule": "*/120 4-22 * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}
        }),
        json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "paused", "namespace": "kiamol-ch14-test"},
            "spec": {"schedule": "@daily", "suspend": true, "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}
        }),
    ] {
        k.apply(job);
    }
    for obj in [
        json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "kiamol-ch14-test", "generation": 2},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 2, "maxReplicas": 4,
                     "metrics": [
                         {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                         {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "800Ki"}}},
                         {"type": "External", "external": {"metric": {"name": "sqs_jobs"}, "target": {"type": "Value", "value": "30"}}}]},
            "status": {"currentReplicas": 2, "desiredReplicas": 3,
                       "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageValue": "7m", "averageUtilization": 80}}}],
                       "conditions": [{"type": "AbleToScale", "status": "True"}]}
        }),
        json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "kiamol-ch14-test"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "rbd", "volumeName": "pv-data",
                     "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound"}
        }),
        json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "pv-data"},
            "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "rbd",
                     "claimRef": {"name": "data", "namespace": "kiamol-ch14-test"},
                     "csi": {"driver": "rbd.csi.ceph.com", "volumeHandle": "vol-1"}},
            "status": {"phase": "Bound"}
        }),
        json!({
            "apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "compute", "namespace": "kiamol-ch14-test"},
            "spec": {"hard": {"requests.cpu": "4"}},
            "status": {"hard": {"requests.cpu": "4", "limits.memory": "2Gi"},
                       "used": {"requests.cpu": "1500m", "limits.memory": "512Mi"}}
        }),
    ] {
        k.apply(obj);
    }
    let (_ks, port) = kube_state_ready(
        &dir,
        &k.url(),
        &[
            "--metric-labels-allowlist=pods=[app],secrets=[team]",
            "--metric-annotations-allowlist=secrets=[*]",
            "--legacy-resource-metrics",
        ],
    );
    let url = format!("http://127.0.0.1:{port}/metrics");
    let (code, text) = get(&url);
    assert_eq!(code, 200);
    let s = samples(&text);
    let base = r#"namespace="kiamol-ch14-test",pod="crashy",uid="uid-crashy""#;
    let want = [
        (format!(r#"kube_pod_info{{{base},host_ip="192.168.49.2",pod_ip="127.0.1.50",node="node-1",created_by_kind="ReplicaSet",created_by_name="crashy-rs",priority_class="",host_network="false"}}"#), "1"),
        (format!(r#"kube_pod_labels{{{base},label_app="crashy"}}"#), "1"),
        (format!(r#"kube_pod_created{{{base}}}"#), "1.7959968e+09"),
        (format!(r#"kube_pod_owner{{{base},owner_kind="ReplicaSet",owner_name="crashy-rs",owner_is_controller="true"}}"#), "1"),
        (format!(r#"kube_pod_status_phase{{{base},phase="Running"}}"#), "1"),
        (format!(r#"kube_pod_status_phase{{{base},phase="Pending"}}"#), "0"),
        (format!(r#"kube_pod_status_ready{{{base},condition="false"}}"#), "1"),
        (format!(r#"kube_pod_status_ready{{{base},condition="true"}}"#), "0"),
        (format!(r#"kube_pod_container_info{{{base},container="app",image_spec="kiamol/crash:1",image="docker.io/kiamol/crash:1",image_id="docker.io/kiamol/crash@sha256:1",container_id="containerd://abc"}}"#), "1"),
        (format!(r#"kube_pod_container_status_waiting{{{base},container="app"}}"#), "1"),
        (format!(r#"kube_pod_container_status_waiting_reason{{{base},container="app",reason="CrashLoopBackOff"}}"#), "1"),
        (format!(r#"kube_pod_container_status_running{{{base},container="app"}}"#), "0"),
        (format!(r#"kube_pod_container_status_terminated{{{base},container="app"}}"#), "0"),
        (format!(r#"kube_pod_container_status_last_terminated_reason{{{base},container="app",reason="Error"}}"#), "1"),
        (format!(r#"kube_pod_container_status_restarts_total{{{base},container="app"}}"#), "5"),
        (format!(r#"kube_pod_container_resource_requests{{{base},container="app",node="node-1",resource="cpu",unit="core"}}"#), "0.25"),
        (format!(r#"kube_pod_container_resource_requests{{{base},container="app",node="node-1",resource="memory",unit="byte"}}"#), "6.7108864e+07"),
        (format!(r#"kube_pod_container_resource_limits{{{base},container="app",node="node-1",resource="cpu",unit="core"}}"#), "1"),
        (format!(r#"kube_pod_container_resource_limits{{{base},container="app",node="node-1",resource="memory",unit="byte"}}"#), "1.34217728e+08"),
        (r#"kube_pod_container_resource_requests_cpu_cores{namespace="kiamol-ch14-test",pod="crashy",container="app",node="node-1"}"#.into(), "0.25"),
        (r#"kube_pod_container_resource_limits_memory_bytes{namespace="kiamol-ch14-test",pod="crashy",container="app",node="node-1"}"#.into(), "1.34217728e+08"),
        (r#"kube_node_info{node="node-1",kernel_version="6.1.0-28-amd64",os_image="Debian GNU/Linux 12 (bookworm)",container_runtime_version="containerd://1.7.18",kubelet_version="v1.33.1",kubeproxy_version="v1.33.1",provider_id="fake://node-1",pod_cidr="10.244.0.0/24",system_uuid="uuid-node-1",internal_ip="192.168.49.2"}"#.into(), "1"),
        (r#"kube_node_status_condition{node="node-1",condition="Ready",status="true"}"#.into(), "1"),
        (r#"kube_node_status_condition{node="node-1",condition="Ready",status="false"}"#.into(), "0"),
        (r#"kube_node_status_allocatable{node="node-1",resource="cpu",unit="core"}"#.into(), "3.8"),
        (r#"kube_node_status_allocatable{node="node-1",resource="memory",unit="byte"}"#.into(), "1.6185765888e+10"),
        (r#"kube_node_status_allocatable{node="node-1",resource="pods",unit="integer"}"#.into(), "110"),
        (r#"kube_node_status_capacity{node="node-1",resource="ephemeral_storage",unit="byte"}"#.into(), "1.05088212992e+11"),
        (r#"kube_node_status_allocatable_cpu_cores{node="node-1"}"#.into(), "3.8"),
        (r#"kube_node_status_allocatable_memory_bytes{node="node-1"}"#.into(), "1.6185765888e+10"),
        (r#"kube_node_spec_unschedulable{node="node-1"}"#.into(), "0"),
        (r#"kube_namespace_status_phase{namespace="kiamol-ch14-test",phase="Active"}"#.into(), "1"),
        (r#"kube_namespace_status_phase{namespace="kiamol-ch14-test",phase="Terminating"}"#.into(), "0"),
        (r#"kube_configmap_info{namespace="kiamol-ch14-test",configmap="app-config"}"#.into(), "1"),
        (r#"kube_configmap_created{namespace="kiamol-ch14-test",configmap="app-config"}"#.into(), "1.7959968e+09"),
        (r#"kube_secret_info{namespace="kiamol-ch14-test",secret="db-password"}"#.into(), "1"),
        (r#"kube_secret_type{namespace="kiamol-ch14-test",secret="db-password",type="Opaque"}"#.into(), "1"),
        (r#"kube_secret_labels{namespace="kiamol-ch14-test",secret="db-password",label_team="data"}"#.into(), "1"),
        (r#"kube_secret_created{namespace="kiamol-ch14-test",secret="db-password"}"#.into(), "1.7959968e+09"),
        (r#"kube_replicaset_owner{namespace="kiamol-ch14-test",replicaset="web-7d9f",owner_kind="Deployment",owner_name="web",owner_is_controller="true"}"#.into(), "1"),
        (r#"kube_replicaset_spec_replicas{namespace="kiamol-ch14-test",replicaset="web-7d9f"}"#.into(), "2"),
        (r#"kube_replicaset_status_replicas{namespace="kiamol-ch14-test",replicaset="web-7d9f"}"#.into(), "2"),
        (r#"kube_replicaset_status_fully_labeled_replicas{namespace="kiamol-ch14-test",replicaset="web-7d9f"}"#.into(), "2"),
        (r#"kube_replicaset_status_ready_replicas{namespace="kiamol-ch14-test",replicaset="web-7d9f"}"#.into(), "1"),
        (r#"kube_replicaset_status_observed_generation{namespace="kiamol-ch14-test",replicaset="web-7d9f"}"#.into(), "3"),
        (r#"kube_replicaset_metadata_generation{namespace="kiamol-ch14-test",replicaset="web-7d9f"}"#.into(), "3"),
        (r#"kube_replicaset_created{namespace="kiamol-ch14-test",replicaset="web-7d9f"}"#.into(), "1.7959968e+09"),
        (r#"kube_daemonset_status_current_number_scheduled{namespace="kiamol-ch14-test",daemonset="node-agent"}"#.into(), "3"),
        (r#"kube_daemonset_status_desired_number_scheduled{namespace="kiamol-ch14-test",daemonset="node-agent"}"#.into(), "3"),
        (r#"kube_daemonset_status_number_available{namespace="kiamol-ch14-test",daemonset="node-agent"}"#.into(), "2"),
        (r#"kube_daemonset_status_number_misscheduled{namespace="kiamol-ch14-test",daemonset="node-agent"}"#.into(), "1"),
        (r#"kube_daemonset_status_number_ready{namespace="kiamol-ch14-test",daemonset="node-agent"}"#.into(), "2"),
        (r#"kube_daemonset_status_number_unavailable{namespace="kiamol-ch14-test",daemonset="node-agent"}"#.into(), "1"),
        (r#"kube_daemonset_status_observed_generation{namespace="kiamol-ch14-test",daemonset="node-agent"}"#.into(), "2"),
        (r#"kube_daemonset_status_updated_number_scheduled{namespace="kiamol-ch14-test",daemonset="node-agent"}"#.into(), "3"),
        (r#"kube_daemonset_metadata_generation{namespace="kiamol-ch14-test",daemonset="node-agent"}"#.into(), "2"),
        (r#"kube_daemonset_created{namespace="kiamol-ch14-test",daemonset="node-agent"}"#.into(), "1.7959968e+09"),
        (r#"kube_statefulset_replicas{namespace="kiamol-ch14-test",statefulset="db"}"#.into(), "3"),
        (r#"kube_statefulset_status_replicas{namespace="kiamol-ch14-test",statefulset="db"}"#.into(), "3"),
        (r#"kube_statefulset_status_replicas_available{namespace="kiamol-ch14-test",statefulset="db"}"#.into(), "2"),
        (r#"kube_statefulset_status_replicas_current{namespace="kiamol-ch14-test",statefulset="db"}"#.into(), "3"),
        (r#"kube_statefulset_status_replicas_ready{namespace="kiamol-ch14-test",statefulset="db"}"#.into(), "2"),
        (r#"kube_statefulset_status_replicas_updated{namespace="kiamol-ch14-test",statefulset="db"}"#.into(), "1"),
        (r#"kube_statefulset_status_observed_generation{namespace="kiamol-ch14-test",statefulset="db"}"#.into(), "4"),
        (r#"kube_statefulset_metadata_generation{namespace="kiamol-ch14-test",statefulset="db"}"#.into(), "4"),
        (r#"kube_statefulset_persistentvolumeclaim_retention_policy{namespace="kiamol-ch14-test",statefulset="db",when_deleted="Retain",when_scaled="Delete"}"#.into(), "1"),
        (r#"kube_statefulset_status_current_revision{namespace="kiamol-ch14-test",statefulset="db",revision="db-5f6"}"#.into(), "1"),
        (r#"kube_statefulset_status_update_revision{namespace="kiamol-ch14-test",statefulset="db",revision="db-7a8"}"#.into(), "1"),
        // Jobs, as kube-state-metrics' job.go renders them.
        (r#"kube_job_info{namespace="kiamol-ch14-test",job_name="backup-29"}"#.into(), "1"),
        (r#"kube_job_created{namespace="kiamol-ch14-test",job_name="backup-29"}"#.into(), "1.7959968e+09"),
        (r#"kube_job_spec_parallelism{namespace="kiamol-ch14-test",job_name="backup-29"}"#.into(), "1"),
        (r#"kube_job_spec_completions{namespace="kiamol-ch14-test",job_name="backup-29"}"#.into(), "1"),
        (r#"kube_job_spec_active_deadline_seconds{namespace="kiamol-ch14-test",job_name="backup-29"}"#.into(), "900"),
        (r#"kube_job_status_succeeded{namespace="kiamol-ch14-test",job_name="backup-29"}"#.into(), "0"),
        (r#"kube_job_status_failed{namespace="kiamol-ch14-test",job_name="backup-29",reason="BackoffLimitExceeded"}"#.into(), "1"),
        (r#"kube_job_status_failed{namespace="kiamol-ch14-test",job_name="backup-29",reason="DeadlineExceeded"}"#.into(), "0"),
        (r#"kube_job_status_failed{namespace="kiamol-ch14-test",job_name="backup-29",reason="Evicted"}"#.into(), "0"),
        (r#"kube_job_status_active{namespace="kiamol-ch14-test",job_name="backup-29"}"#.into(), "0"),
        (r#"kube_job_status_ready{namespace="kiamol-ch14-test",job_name="backup-29"}"#.into(), "0"),
        (r#"kube_job_failed{namespace="kiamol-ch14-test",job_name="backup-29",condition="true"}"#.into(), "1"),
        (r#"kube_job_failed{namespace="kiamol-ch14-test",job_name="backup-29",condition="false"}"#.into(), "0"),
        (r#"kube_job_failed{namespace="kiamol-ch14-test",job_name="backup-29",condition="unknown"}"#.into(), "0"),
        (r#"kube_job_status_start_time{namespace="kiamol-ch14-test",job_name="backup-29"}"#.into(), "1.796032807e+09"),
        (r#"kube_job_owner{namespace="kiamol-ch14-test",job_name="backup-29",owner_kind="CronJob",owner_name="backup",owner_is_controller="true"}"#.into(), "1"),
        (r#"kube_job_status_failed{namespace="kiamol-ch14-test",job_name="migrate",reason=""}"#.into(), "2"),
        (r#"kube_job_status_active{namespace="kiamol-ch14-test",job_name="migrate"}"#.into(), "1"),
        (r#"kube_job_status_ready{namespace="kiamol-ch14-test",job_name="migrate"}"#.into(), "1"),
        (r#"kube_job_owner{namespace="kiamol-ch14-test",job_name="migrate",owner_kind="",owner_name="",owner_is_controller=""}"#.into(), "1"),
        (r#"kube_job_status_failed{namespace="kiamol-ch14-test",job_name="done"}"#.into(), "0"),
        (r#"kube_job_complete{namespace="kiamol-ch14-test",job_name="done",condition="true"}"#.into(), "1"),
        (r#"kube_job_complete{namespace="kiamol-ch14-test",job_name="done",condition="false"}"#.into(), "0"),
        (r#"kube_job_status_completion_time{namespace="kiamol-ch14-test",job_name="done"}"#.into(), "1.796032867e+09"),
        // CronJobs: the next run in the job's own time zone (18:00 in Shanghai after 04:34 UTC).
        (r#"kube_cronjob_info{namespace="kiamol-ch14-test",cronjob="backup",schedule="0 */6 * * *",concurrency_policy="Forbid",timezone="Asia/Shanghai"}"#.into(), "1"),
        (r#"kube_cronjob_created{namespace="kiamol-ch14-test",cronjob="backup"}"#.into(), "1.7959968e+09"),
        (r#"kube_cronjob_status_active{namespace="kiamol-ch14-test",cronjob="backup"}"#.into(), "1"),
        (r#"kube_cronjob_status_last_schedule_time{namespace="kiamol-ch14-test",cronjob="backup"}"#.into(), "1.520742896e+09"),
        (r#"kube_cronjob_spec_suspend{namespace="kiamol-ch14-test",cronjob="backup"}"#.into(), "0"),
        (r#"kube_cronjob_spec_starting_deadline_seconds{namespace="kiamol-ch14-test",cronjob="backup"}"#.into(), "300"),
        (r#"kube_cronjob_next_schedule_time{namespace="kiamol-ch14-test",cronjob="backup"}"#.into(), "1.5207624e+09"),
        (r#"kube_cronjob_spec_successful_job_history_limit{namespace="kiamol-ch14-test",cronjob="backup"}"#.into(), "3"),
        (r#"kube_cronjob_spec_failed_job_history_limit{namespace="kiamol-ch14-test",cronjob="backup"}"#.into(), "1"),
        (r#"kube_cronjob_schedule_invalid{namespace="kiamol-ch14-test",cronjob="broken"}"#.into(), "1"),
        (r#"kube_cronjob_info{namespace="kiamol-ch14-test",cronjob="paused",schedule="@daily",concurrency_policy="",timezone="local"}"#.into(), "1"),
        (r#"kube_cronjob_spec_suspend{namespace="kiamol-ch14-test",cronjob="paused"}"#.into(), "1"),
        // HorizontalPodAutoscalers, PVCs, PVs and quotas (horizontalpodautoscaler.go,
        // persistentvolumeclaim.go, persistentvolume.go, resourcequota.go).
        (r#"kube_horizontalpodautoscaler_info{namespace="kiamol-ch14-test",horizontalpodautoscaler="web",scaletargetref_api_version="apps/v1",scaletargetref_kind="Deployment",scaletargetref_name="web"}"#.into(), "1"),
        (r#"kube_horizontalpodautoscaler_metadata_generation{namespace="kiamol-ch14-test",horizontalpodautoscaler="web"}"#.into(), "2"),
        (r#"kube_horizontalpodautoscaler_spec_max_replicas{namespace="kiamol-ch14-test",horizontalpodautoscaler="web"}"#.into(), "4"),
        (r#"kube_horizontalpodautoscaler_spec_min_replicas{namespace="kiamol-ch14-test",horizontalpodautoscaler="web"}"#.into(), "2"),
        (r#"kube_horizontalpodautoscaler_spec_target_metric{namespace="kiamol-ch14-test",horizontalpodautoscaler="web",metric_name="cpu",metric_target_type="utilization"}"#.into(), "80"),
        (r#"kube_horizontalpodautoscaler_spec_target_metric{namespace="kiamol-ch14-test",horizontalpodautoscaler="web",metric_name="memory",metric_target_type="average"}"#.into(), "819200"),
        (r#"kube_horizontalpodautoscaler_spec_target_metric{namespace="kiamol-ch14-test",horizontalpodautoscaler="web",metric_name="sqs_jobs",metric_target_type="value"}"#.into(), "30"),
        (r#"kube_horizontalpodautoscaler_status_target_metric{namespace="kiamol-ch14-test",horizontalpodautoscaler="web",metric_name="cpu",metric_target_type="average"}"#.into(), "0.007"),
        (r#"kube_horizontalpodautoscaler_status_target_metric{namespace="kiamol-ch14-test",horizontalpodautoscaler="web",metric_name="cpu",metric_target_type="utilization"}"#.into(), "80"),
        (r#"kube_horizontalpodautoscaler_status_current_replicas{namespace="kiamol-ch14-test",horizontalpodautoscaler="web"}"#.into(), "2"),
        (r#"kube_horizontalpodautoscaler_status_desired_replicas{namespace="kiamol-ch14-test",horizontalpodautoscaler="web"}"#.into(), "3"),
        (r#"kube_horizontalpodautoscaler_status_condition{namespace="kiamol-ch14-test",horizontalpodautoscaler="web",condition="AbleToScale",status="true"}"#.into(), "1"),
        (r#"kube_horizontalpodautoscaler_status_condition{namespace="kiamol-ch14-test",horizontalpodautoscaler="web",condition="AbleToScale",status="false"}"#.into(), "0"),
        (r#"kube_horizontalpodautoscaler_created{namespace="kiamol-ch14-test",horizontalpodautoscaler="web"}"#.into(), "1.7959968e+09"),
        (r#"kube_persistentvolumeclaim_info{namespace="kiamol-ch14-test",persistentvolumeclaim="data",storageclass="rbd",volumename="pv-data",volumemode=""}"#.into(), "1"),
        (r#"kube_persistentvolumeclaim_status_phase{namespace="kiamol-ch14-test",persistentvolumeclaim="data",phase="Bound"}"#.into(), "1"),
        (r#"kube_persistentvolumeclaim_status_phase{namespace="kiamol-ch14-test",persistentvolumeclaim="data",phase="Pending"}"#.into(), "0"),
        (r#"kube_persistentvolumeclaim_resource_requests_storage_bytes{namespace="kiamol-ch14-test",persistentvolumeclaim="data"}"#.into(), "1.073741824e+09"),
        (r#"kube_persistentvolumeclaim_access_mode{namespace="kiamol-ch14-test",persistentvolumeclaim="data",access_mode="ReadWriteOnce"}"#.into(), "1"),
        (r#"kube_persistentvolume_claim_ref{persistentvolume="pv-data",name="data",claim_namespace="kiamol-ch14-test"}"#.into(), "1"),
        (r#"kube_persistentvolume_status_phase{persistentvolume="pv-data",phase="Bound"}"#.into(), "1"),
        (r#"kube_persistentvolume_status_phase{persistentvolume="pv-data",phase="Failed"}"#.into(), "0"),
        (r#"kube_persistentvolume_info{persistentvolume="pv-data",storageclass="rbd",gce_persistent_disk_name="",ebs_volume_id="",azure_disk_name="",fc_wwids="",fc_lun="",fc_target_wwns="",iscsi_target_portal="",iscsi_iqn="",iscsi_lun="",iscsi_initiator_name="",nfs_server="",nfs_path="",csi_driver="rbd.csi.ceph.com",csi_volume_handle="vol-1",local_path="",local_fs="",host_path="",host_path_type="",reclaim_policy="Retain"}"#.into(), "1"),
        (r#"kube_persistentvolume_capacity_bytes{persistentvolume="pv-data"}"#.into(), "5.36870912e+09"),
        (r#"kube_persistentvolume_volume_mode{persistentvolume="pv-data",volumemode="Filesystem"}"#.into(), "1"),
        (r#"kube_resourcequota{namespace="kiamol-ch14-test",resourcequota="compute",resource="requests.cpu",type="hard"}"#.into(), "4"),
        (r#"kube_resourcequota{namespace="kiamol-ch14-test",resourcequota="compute",resource="requests.cpu",type="used"}"#.into(), "1.5"),
        (r#"kube_resourcequota{namespace="kiamol-ch14-test",resourcequota="compute",resource="limits.memory",type="hard"}"#.into(), "2.147483648e+09"),
        (r#"kube_resourcequota{namespace="kiamol-ch14-test",resourcequota="compute",resource="limits.memory",type="used"}"#.into(), "5.36870912e+08"),
        // Every annotation allowed, but never kubectl's copy of the applied object.
        (r#"kube_secret_annotations{namespace="kiamol-ch14-test",secret="db-password",annotation_owner="dba"}"#.into(), "1"),
        // Newer kube-state-metrics: a secret without owners has one series with empty owner labels.
        (r#"kube_secret_owner{namespace="kiamol-ch14-test",secret="db-password",owner_kind="",owner_name="",owner_is_controller=""}"#.into(), "1"),
    ];
    for (k, v) in &want {
        assert_eq!(
            s.get(k).map(String::as_str),
            Some(*v),
            "{k}\n--- exposition:\n{text}"
        );
    }
    // Resource versions as numbers, as the API server stored them.
    for (key, obj) in [
        (
            r#"kube_configmap_metadata_resource_version{namespace="kiamol-ch14-test",configmap="app-config"}"#,
            &cm,
        ),
        (
            r#"kube_secret_metadata_resource_version{namespace="kiamol-ch14-test",secret="db-password"}"#,
            &secret,
        ),
    ] {
        let rv: f64 = obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let got: f64 = s
            .get(key)
            .unwrap_or_else(|| panic!("{key}"))
            .parse()
            .unwrap();
        assert_eq!(got, rv, "{key}");
    }
    // No next run for a suspended CronJob or one whose schedule does not parse; no
    // completion for a Job still running.
    for absent in [
        r#"kube_cronjob_next_schedule_time{namespace="kiamol-ch14-test",cronjob="paused"}"#,
        r#"kube_cronjob_next_schedule_time{namespace="kiamol-ch14-test",cronjob="broken"}"#,
        r#"kube_cronjob_schedule_invalid{namespace="kiamol-ch14-test",cronjob="backup"}"#,
        r#"kube_job_complete{namespace="kiamol-ch14-test",job_name="migrate",condition="true"}"#,
        r#"kube_job_status_completion_time{namespace="kiamol-ch14-test",job_name="migrate"}"#,
    ] {
        assert!(!s.contains_key(absent), "{absent}");
    }
    // No ordinals and no deletion: those families have no sample, as in kube-state-metrics.
    assert!(
        !s.keys()
            .any(|k| k.starts_with("kube_statefulset_ordinals_start{")
                || k.starts_with("kube_statefulset_deletion_timestamp{"))
    );
    // Labels not allowlisted for configmaps: HELP and TYPE only. Data never appears.
    assert!(text.contains("# TYPE kube_configmap_labels gauge\n"));
    assert!(!s.keys().any(|k| k.starts_with("kube_configmap_labels{")));
    assert!(!text.contains("config-value-never-exported") && !text.contains("c2VjcmV0"));
    // Every chapter 14 Deployment, with its replicas; their pods' labels are not allowlisted
    // beyond `app`, and deployment labels not at all (no sample, HELP and TYPE only).
    for (name, (d, _)) in &apps {
        let ns = d["metadata"]["namespace"].as_str().unwrap_or("default");
        let key =
            format!(r#"kube_deployment_spec_replicas{{namespace="{ns}",deployment="{name}"}}"#);
        assert_eq!(s.get(&key).map(String::as_str), Some("1"), "{key}");
        let key = format!(
            r#"kube_deployment_status_replicas_available{{namespace="{ns}",deployment="{name}"}}"#
        );
        assert_eq!(s.get(&key).map(String::as_str), Some("1"), "{key}");
    }
    assert!(text.contains(
        "# HELP kube_pod_info [STABLE] Information about pod.\n# TYPE kube_pod_info gauge\n"
    ));
    assert!(text.contains("# TYPE kube_pod_container_status_restarts_total counter\n"));
    assert!(text.contains("# TYPE kube_deployment_labels gauge\n"));
    assert!(!s.keys().any(|k| k.starts_with("kube_deployment_labels{")));
    // Every service, with its cluster IP.
    let services = s
        .keys()
        .filter(|k| k.starts_with("kube_service_info{"))
        .count();
    assert!(services >= 4, "services: {services}");
    // The whole exposition parses as Prometheus text (vigil's own parser, strictly).
    assert!(
        s.len() > 100
            && text
                .lines()
                .all(|l| l.starts_with('#') || l.rsplit_once(' ').is_some()),
        "{text}"
    );

    // Its own metrics: what it holds, by resource.
    let (_, tele) = get(&format!("http://127.0.0.1:{port}/telemetry"));
    let pods_held: f64 = samples(&tele)[r#"vigil_kube_state_objects{resource="pods"}"#]
        .parse()
        .unwrap();
    assert_eq!(pods_held, apps.len() as f64 + 1.0, "{tele}");
    assert!(tele.contains("# TYPE vigil_kube_state_watch_events_total counter\n"));

    // Changes arrive through the watch: the deployment loses its available replica, the
    // crashing pod goes away.
    let (d, _) = &apps["timecheck"];
    let ns = d["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    k.apply(deployment(d, 0));
    assert!(k.delete(Res::Pods, "kiamol-ch14-test/crashy"));
    let key = format!(
        r#"kube_deployment_status_replicas_available{{namespace="{ns}",deployment="timecheck"}}"#
    );
    wait_for(
        "the update and the deletion",
        Duration::from_secs(10),
        || {
            let s = samples(&get(&url).1);
            (s.get(&key).map(String::as_str) == Some("0")
                && !s.keys().any(|k| k.contains(r#"pod="crashy""#)))
            .then_some(())
        },
    );
    let s = samples(&get(&url).1);
    assert_eq!(
        s.get(&format!(r#"kube_deployment_status_replicas_unavailable{{namespace="{ns}",deployment="timecheck"}}"#)).map(String::as_str),
        Some("1")
    );

    // vigil scrapes it; the built-in Kubernetes dashboard's kube-state queries have data.
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: kube-state-metrics\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    );
    let v = Vigil::start("kube-state-scraper", Some(&cfg), &[]);
    wait_for("kube-state scraped", Duration::from_secs(20), || {
        (!query(&v.base, "kube_node_info").is_empty()).then_some(())
    });
    let one = |q: &str| -> f64 {
        let r = query(&v.base, q);
        assert_eq!(r.len(), 1, "{q}: {r:?}");
        r[0]["value"][1].as_str().unwrap().parse().unwrap()
    };
    assert_eq!(one("count(kube_node_info)"), 1.0);
    assert_eq!(
        one(r#"sum(kube_pod_status_phase{phase="Running"})"#),
        apps.len() as f64
    );
    assert_eq!(
        one(r#"sum(kube_pod_status_ready{condition="true"})"#),
        apps.len() as f64
    );
    assert_eq!(
        one("count(kube_deployment_status_replicas_available)"),
        apps.len() as f64
    );
    assert_eq!(one("sum(kube_pod_container_status_restarts_total)"), 0.0);
    assert_eq!(
        one(
            r#"kube_node_status_allocatable{resource="cpu"} - on (node) kube_node_status_allocatable_cpu_cores"#
        ),
        0.0
    );
}

/// kube-state-metrics' flags as its Helm chart and manifests pass them: `--port`,
/// `--telemetry-port`, the chart's 28-resource `--resources` (the ones vigil does not render
/// are named in a warning), `--namespaces`, `--metric-denylist`, `--enable-gzip-encoding`;
/// flags vigil does not implement are refused by name.
#[test]
fn kube_state_metrics_flags() {
    let dir = temp_dir("kube-state-flags");
    let k = FakeKube::start();
    for (ns, name) in [("team-a", "a1"), ("team-b", "b1")] {
        k.apply(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}")},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "x:1"}]},
            "status": {"phase": "Running"}
        }));
    }
    let chart_resources = "certificatesigningrequests,configmaps,cronjobs,daemonsets,deployments,endpoints,horizontalpodautoscalers,ingresses,jobs,leases,limitranges,mutatingwebhookconfigurations,namespaces,networkpolicies,nodes,persistentvolumeclaims,persistentvolumes,poddisruptionbudgets,pods,replicasets,replicationcontrollers,resourcequotas,secrets,services,statefulsets,storageclasses,validatingwebhookconfigurations,volumeattachments";
    let (port, tport) = (free_port(), free_port());
    let ks = spawn(
        "vigil-kube-state",
        &vigil_bin(),
        &[
            "kube-state".into(),
            format!("--apiserver={}", k.url()),
            "--host=127.0.0.1".into(),
            format!("--port={port}"),
            "--telemetry-host=127.0.0.1".into(),
            format!("--telemetry-port={tport}"),
            format!("--resources={chart_resources}"),
            "--namespaces=team-a".into(),
            "--metric-denylist=kube_pod_status_.*".into(),
            "--enable-gzip-encoding".into(),
            "--use-apiserver-cache=false".into(),
        ],
        &dir,
    );
    wait_for("synced", Duration::from_secs(20), || {
        http("GET", &format!("http://127.0.0.1:{port}/readyz"), None)
            .ok()
            .filter(|(c, _)| *c == 200)
    });
    let (_, text) = get(&format!("http://127.0.0.1:{port}/metrics"));
    assert!(
        text.contains(r#"kube_pod_info{namespace="team-a",pod="a1""#),
        "{text}"
    );
    assert!(!text.contains("team-b"), "--namespaces=team-a: {text}");
    assert!(!text.contains("kube_pod_status_phase"), "--metric-denylist");
    assert!(
        text.contains("kube_pod_container_info"),
        "other families stay"
    );
    let log = ks.log_text();
    // Every resource of the chart's list is rendered: none is named as not rendered.
    assert!(!log.contains("NOT RENDERED"), "{log}");
    // gzip for clients that take it.
    let (_, _, head) = curl(&[
        "-H",
        "Accept-Encoding: gzip",
        "-o",
        "/dev/null",
        "-D",
        "-",
        &format!("http://127.0.0.1:{port}/metrics"),
    ]);
    assert!(
        head.to_ascii_lowercase().contains("content-encoding: gzip"),
        "{head}"
    );
    // The telemetry port serves the exporter's own metrics.
    let (code, tel) = get(&format!("http://127.0.0.1:{tport}/metrics"));
    assert_eq!(code, 200);
    assert!(tel.contains("vigil_kube_state_watch_events_total"), "{tel}");
    // --metric-allowlist: only the families it matches.
    let (_allow, aport) = kube_state_ready(
        &dir,
        &k.url(),
        &[
            "--resources=pods,namespaces",
            "--metric-allowlist=kube_pod_info,kube_pod_container_.*",
        ],
    );
    let (_, text) = get(&format!("http://127.0.0.1:{aport}/metrics"));
    let families: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert!(families.contains("kube_pod_info"), "{text}");
    assert!(families.contains("kube_pod_container_info"), "{text}");
    assert!(
        families
            .iter()
            .all(|f| *f == "kube_pod_info" || f.starts_with("kube_pod_container_")),
        "{families:?}"
    );
    // Refused by name, with the reason.
    for (flag, want) in [
        (
            "--total-shards=0",
            "--total-shards: refused: must be at least 1",
        ),
        (
            "--shard=2",
            "--shard: refused: must be less than --total-shards",
        ),
        ("--auth-filter", "--auth-filter: refused"),
        (
            "--metric-opt-in-list=kube_pod_nodeselectors",
            "--metric-opt-in-list: refused",
        ),
        ("--resources=widgets", "unknown resource \"widgets\""),
        ("--resources=clusterroles", "renders none of"),
    ] {
        let out = std::process::Command::new(vigil_bin())
            .args(["kube-state", flag, "--apiserver=http://127.0.0.1:1"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag}: {err}");
        assert!(err.contains(want), "{flag}: {err}");
    }
}

/// A role without a resource (one written before vigil rendered it), and a cluster without
/// one (an older Kubernetes): the exporter still becomes ready, serves the others, and says
/// what it may not or cannot list.
#[test]
fn kube_state_without_permission_for_a_resource_is_ready_and_says_so() {
    let dir = temp_dir("kube-state-forbidden");
    let k = FakeKube::start();
    k.forbid(Res::Secrets);
    // A cluster before Kubernetes 1.36 has no v1 mutating admission policies: 404.
    k.unserve(Res::MutatingAdmissionPolicies);
    k.apply(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "default"}
    }));
    // Watches end after a second, so each resource's watch is restarted again and again.
    k.set_watch_cap(Duration::from_secs(1));
    let port = free_port();
    let tport = free_port();
    let ks = spawn(
        "vigil-kube-state",
        &vigil_bin(),
        &[
            "kube-state".into(),
            "--telemetry-host=127.0.0.1".into(),
            format!("--telemetry-port={tport}"),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--apiserver={}", k.url()),
        ],
        &dir,
    );
    wait_for("ready without secrets", Duration::from_secs(20), || {
        http("GET", &format!("http://127.0.0.1:{port}/readyz"), None)
            .ok()
            .filter(|(c, _)| *c == 200)
    });
    let (_, text) = get(&format!("http://127.0.0.1:{port}/metrics"));
    let s = samples(&text);
    assert_eq!(
        s.get(r#"kube_configmap_info{namespace="default",configmap="cm"}"#)
            .map(String::as_str),
        Some("1"),
        "{text}"
    );
    assert!(!s.keys().any(|k| k.starts_with("kube_secret_")), "{text}");
    let log = ks.log_text();
    assert!(
        log.contains("not allowed to list") && log.contains("secrets"),
        "{log}"
    );
    assert!(
        log.contains("does not serve this resource") && log.contains("mutatingadmissionpolicies"),
        "{log}"
    );

    // kube-state-metrics' list and watch counters: what the client sent, by the resource's Go
    // type and result. The refused lists are errors; every restarted watch counts.
    let telemetry = || samples(&get(&format!("http://127.0.0.1:{tport}/metrics")).1);
    let n = |t: &std::collections::BTreeMap<String, String>, k: &str| -> u64 {
        t.get(k).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let served = |what: &str| k.requests().iter().filter(|r| *r == what).count() as u64;
    let t = wait_for(
        "restarted configmap watches",
        Duration::from_secs(20),
        || {
            let t = telemetry();
            (n(
                &t,
                r#"kube_state_metrics_watch_total{resource="*v1.ConfigMap",result="success"}"#,
            ) >= 3)
                .then_some(t)
        },
    );
    assert!(
        n(
            &t,
            r#"kube_state_metrics_list_total{resource="*v1.Secret",result="error"}"#
        ) >= 1,
        "{t:?}"
    );
    assert_eq!(
        n(
            &t,
            r#"kube_state_metrics_list_total{resource="*v1.Secret",result="success"}"#
        ),
        0
    );
    // A kind the cluster does not serve (404) is not an error: it would keep the mixin's
    // KubeStateMetricsListErrors firing on every cluster older than the kind.
    assert!(
        !t.keys()
            .any(|k| k.contains("*v1.MutatingAdmissionPolicy\"")),
        "{t:?}"
    );
    // Lists happen once at start here (the watches resume, they do not relist): the count is
    // exactly the list requests the API server answered.
    assert_eq!(
        n(
            &t,
            r#"kube_state_metrics_list_total{resource="*v1.ConfigMap",result="success"}"#
        ),
        served("list configmaps"),
        "{t:?}"
    );
    // Watches keep restarting: the counter never runs ahead of what the server saw.
    let watches = n(
        &t,
        r#"kube_state_metrics_watch_total{resource="*v1.ConfigMap",result="success"}"#,
    );
    assert!(watches <= served("watch configmaps"), "{watches}");
    let text = get(&format!("http://127.0.0.1:{tport}/metrics")).1;
    assert!(
        text.contains("# TYPE kube_state_metrics_list_total counter\n")
            && text.contains(
                "# HELP kube_state_metrics_watch_total Number of total resource watches in kube-state-metrics\n"
            ),
        "{text}"
    );
}

/// `--shard`/`--total-shards` split the objects between instances, each object served by
/// exactly one; `--metric-annotations-allowlist` writes `kube_pod_annotations`.
#[test]
fn kube_state_shards_and_annotations() {
    let dir = temp_dir("kube-state-shards");
    let k = FakeKube::start();
    let pods: Vec<String> = (0..12).map(|i| format!("p{i}")).collect();
    for name in &pods {
        k.apply(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": format!("3f1c9a0e-{name}"),
                         "annotations": {"team": "payments", "secret-note": "x"}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "x:1"}]},
            "status": {"phase": "Running"}
        }));
    }
    let mut served: Vec<Vec<String>> = Vec::new();
    let mut procs = Vec::new();
    for shard in 0..2 {
        let (port, tport) = (free_port(), free_port());
        procs.push(spawn(
            "vigil-kube-state",
            &vigil_bin(),
            &[
                "kube-state".into(),
                format!("--apiserver={}", k.url()),
                "--host=127.0.0.1".into(),
                format!("--port={port}"),
                "--telemetry-host=127.0.0.1".into(),
                format!("--telemetry-port={tport}"),
                "--resources=pods".into(),
                format!("--shard={shard}"),
                "--total-shards=2".into(),
                "--metric-annotations-allowlist=pods=[team]".into(),
            ],
            &dir,
        ));
        wait_for("synced", Duration::from_secs(20), || {
            http("GET", &format!("http://127.0.0.1:{port}/readyz"), None)
                .ok()
                .filter(|(c, _)| *c == 200)
        });
        let (_, text) = get(&format!("http://127.0.0.1:{port}/metrics"));
        let mine: Vec<String> = pods
            .iter()
            .filter(|p| text.contains(&format!("kube_pod_info{{namespace=\"default\",pod=\"{p}\"")))
            .cloned()
            .collect();
        for p in &mine {
            let want = format!(
                "kube_pod_annotations{{namespace=\"default\",pod=\"{p}\",uid=\"3f1c9a0e-{p}\",annotation_team=\"payments\"}} 1"
            );
            assert!(text.contains(&want), "{want}\n{text}");
        }
        assert!(!text.contains("secret_note"), "only allowed keys: {text}");
        let (_, tel) = get(&format!("http://127.0.0.1:{tport}/metrics"));
        assert!(
            tel.contains(&format!(
                "kube_state_metrics_shard_ordinal{{shard_ordinal=\"{shard}\"}} {shard}\n"
            )),
            "{tel}"
        );
        assert!(tel.contains("kube_state_metrics_total_shards 2\n"), "{tel}");
        assert!(
            tel.contains(&format!(
                "# TYPE kube_state_metrics_build_info gauge\nkube_state_metrics_build_info{{branch=\"\",goarch=\"{}\",goos=\"{}\",goversion=\"\",revision=\"vigil\",tags=\"\",version=\"{}\"}} 1\n",
                vigil_exporters::exposition::go_arch(),
                std::env::consts::OS,
                env!("CARGO_PKG_VERSION")
            )),
            "{tel}"
        );
        served.push(mine);
    }
    // Every pod is served by exactly one shard, and both shards get some.
    assert!(served.iter().all(|s| !s.is_empty()), "{served:?}");
    let mut all: Vec<String> = served.concat();
    all.sort();
    let mut want = pods.clone();
    want.sort();
    assert_eq!(all, want, "{served:?}");
}

/// The rest of kube-state-metrics' resources: Endpoints, EndpointSlices, Ingresses,
/// IngressClasses, NetworkPolicies, ReplicationControllers, PodDisruptionBudgets, LimitRanges,
/// Leases, StorageClasses, VolumeAttachments, CertificateSigningRequests and webhook
/// configurations, each with the exact lines kube-state-metrics writes (label order, empty
/// labels, defaults, counts) per `docs/kube-state-metrics.md`. Endpoints (replaced by
/// EndpointSlices in v2.18) and IngressClasses are opt-in there and here.
#[test]
fn kube_state_renders_the_rest_of_the_resources() {
    let dir = temp_dir("kube-state-rest");
    let k = FakeKube::start();
    let ns = "kiamol-ch14-test";
    for obj in [
        json!({"apiVersion": "v1", "kind": "Endpoints",
               "metadata": {"name": "web", "namespace": ns},
               "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "notReadyAddresses": [{"ip": "10.0.0.9"}],
                            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]},
                           {"addresses": [{"ip": "10.0.0.5"}]}]}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "web-abc", "namespace": ns},
               "addressType": "IPv4",
               "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true, "serving": true, "terminating": false},
                              "targetRef": {"kind": "Pod", "name": "web-1", "namespace": ns},
                              "nodeName": "node-1", "zone": "zone-a",
                              "hints": {"forZones": [{"name": "zone-a"}]}},
                             {"addresses": ["10.0.0.2"]}],
               "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "web", "namespace": ns, "annotations": {"kubernetes.io/ingress.class": "nginx"}},
               "spec": {"ingressClassName": "other",
                        "rules": [{"host": "web.example", "http": {"paths": [
                            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                            {"path": "/named", "pathType": "Exact", "backend": {"service": {"name": "web", "port": {"name": "http"}}}},
                            {"path": "/static", "pathType": "ImplementationSpecific", "backend": {"resource": {"apiGroup": "k8s.example.com", "kind": "Bucket", "name": "assets"}}}]}},
                                  {"host": "nohttp.example"}],
                        "tls": [{"hosts": ["web.example", "www.example"], "secretName": "web-tls"}, {"secretName": "unused"}]}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "plain", "namespace": ns}, "spec": {}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
               "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "deny-all", "namespace": ns},
               "spec": {"podSelector": {}, "ingress": [{}, {}], "policyTypes": ["Ingress", "Egress"]}}),
        json!({"apiVersion": "v1", "kind": "ReplicationController",
               "metadata": {"name": "legacy", "namespace": ns, "generation": 3},
               "spec": {"replicas": 2},
               "status": {"replicas": 2, "readyReplicas": 1, "observedGeneration": 3}}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
               "metadata": {"name": "web-pdb", "namespace": ns, "labels": {"team": "web"}},
               "spec": {"minAvailable": 1},
               "status": {"currentHealthy": 2, "desiredHealthy": 1, "disruptionsAllowed": 1, "expectedPods": 2, "observedGeneration": 1}}),
        json!({"apiVersion": "v1", "kind": "LimitRange",
               "metadata": {"name": "limits", "namespace": ns},
               "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "defaultRequest": {"memory": "128Mi"},
                                    "maxLimitRequestRatio": {"cpu": "250m"}}]}}),
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "node-1", "namespace": "kube-node-lease",
                            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": "uid-node-1"}]},
               "spec": {"holderIdentity": "node-1", "renewTime": "2026-12-01T10:00:00.123456Z"}}),
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "kube-scheduler", "namespace": "kube-system"},
               "spec": {"holderIdentity": "cp-1_abc"}}),
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
               "metadata": {"name": "standard", "labels": {"tier": "hdd"}}, "provisioner": "rancher.io/local-path"}),
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
               "metadata": {"name": "fast"}, "provisioner": "ebs.csi.aws.com",
               "reclaimPolicy": "Retain", "volumeBindingMode": "WaitForFirstConsumer"}),
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
               "metadata": {"name": "csi-123", "labels": {"app.kubernetes.io/name": "db"}},
               "spec": {"attacher": "ebs.csi.aws.com", "nodeName": "node-1", "source": {"persistentVolumeName": "pv-data"}},
               "status": {"attached": true, "attachmentMetadata": {"DevicePath": "/dev/xvdba"}}}),
        json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
               "metadata": {"name": "csr-1"},
               "spec": {"request": "AAAA", "signerName": "kubernetes.io/kube-apiserver-client-kubelet", "usages": ["client auth"]},
               "status": {"conditions": [{"type": "Approved", "status": "True"}, {"type": "Approved", "status": "True"}],
                          "certificate": "aGVsbG8gY2VydA=="}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
               "metadata": {"name": "inject"},
               "webhooks": [{"name": "inject.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                             "clientConfig": {"service": {"name": "injector", "namespace": "mesh"}}},
                            {"name": "url.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                             "clientConfig": {"url": "https://hooks.example.com/"}}]}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
               "metadata": {"name": "demo-policy"},
               "spec": {"paramKind": {"apiVersion": "rules.example.com/v1", "kind": "Rule"}, "failurePolicy": "Fail",
                        "validations": [{"expression": "object.spec.replicas <= 5"}]}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
               "metadata": {"name": "demo-binding"},
               "spec": {"policyName": "demo-policy", "validationActions": ["Deny", "Audit"],
                        "paramRef": {"name": "param1", "namespace": "ns1", "parameterNotFoundAction": "Deny"}}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingAdmissionPolicy",
               "metadata": {"name": "add-label"},
               "spec": {"reinvocationPolicy": "Never", "mutations": []}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingAdmissionPolicyBinding",
               "metadata": {"name": "add-label-binding"},
               "spec": {"policyName": "add-label"}}),
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "foos.example.com", "labels": {"app": "foo"}},
               "spec": {"group": "example.com", "scope": "Namespaced",
                        "names": {"kind": "Foo", "plural": "foos"}, "versions": []}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
               "metadata": {"name": "policy"},
               "webhooks": [{"name": "policy.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                             "clientConfig": {"service": {"name": "gatekeeper", "namespace": "gk"}}}]}),
    ] {
        k.apply(obj);
    }
    let all = vigil_exporters::kube_state::SUPPORTED.join(",");
    let start = |resources: Option<&str>| {
        let resources = resources.map(|r| format!("--resources={r}"));
        let mut args =
            vec!["--metric-labels-allowlist=storageclasses=[*],poddisruptionbudgets=[team]"];
        args.extend(resources.as_deref());
        let (p, port) = kube_state_ready(&dir, &k.url(), &args);
        let (code, text) = get(&format!("http://127.0.0.1:{port}/metrics"));
        assert_eq!(code, 200);
        (p, text)
    };
    let (_p, text) = start(Some(&all));
    let s = samples(&text);
    let ep = format!(r#"namespace="{ns}",endpoint="web""#);
    let es = format!(r#"endpointslice="web-abc",namespace="{ns}""#);
    let ing = format!(r#"namespace="{ns}",ingress="web""#);
    let rc = format!(r#"namespace="{ns}",replicationcontroller="legacy""#);
    let pdb = format!(r#"namespace="{ns}",poddisruptionbudget="web-pdb""#);
    let lr = format!(r#"namespace="{ns}",limitrange="limits""#);
    let csr = r#"certificatesigningrequest="csr-1",signer_name="kubernetes.io/kube-apiserver-client-kubelet""#;
    let want: Vec<(String, &str)> = vec![
        (format!(r#"kube_endpoint_info{{{ep}}}"#), "1"),
        (format!(r#"kube_endpoint_created{{{ep}}}"#), "1.7959968e+09"),
        (format!(r#"kube_endpoint_address{{{ep},port_protocol="TCP",port_number="8080",port_name="http",ip="10.0.0.1",ready="true"}}"#), "1"),
        (format!(r#"kube_endpoint_address{{{ep},port_protocol="TCP",port_number="8080",port_name="http",ip="10.0.0.9",ready="false"}}"#), "1"),
        (format!(r#"kube_endpoint_ports{{{ep},port_name="http",port_protocol="TCP",port_number="8080"}}"#), "1"),
        (format!(r#"kube_endpointslice_info{{{es},addresstype="IPv4"}}"#), "1"),
        (format!(r#"kube_endpointslice_endpoints_hints{{{es},address="10.0.0.1",for_zone="zone-a"}}"#), "1"),
        (format!(r#"kube_endpointslice_endpoints{{{es},ready="true",serving="true",terminating="false",hostname="",targetref_kind="Pod",targetref_name="web-1",targetref_namespace="{ns}",endpoint_nodename="node-1",endpoint_zone="zone-a",address="10.0.0.1"}}"#), "1"),
        (format!(r#"kube_endpointslice_endpoints{{{es},ready="",serving="",terminating="",hostname="",targetref_kind="",targetref_name="",targetref_namespace="",endpoint_nodename="",endpoint_zone="",address="10.0.0.2"}}"#), "1"),
        (format!(r#"kube_endpointslice_ports{{{es},port_name="http",port_protocol="TCP",port_number="8080"}}"#), "1"),
        // The legacy annotation wins over the spec's class; `_default` with neither.
        (format!(r#"kube_ingress_info{{{ing},ingressclass="nginx"}}"#), "1"),
        (format!(r#"kube_ingress_info{{namespace="{ns}",ingress="plain",ingressclass="_default"}}"#), "1"),
        (format!(r#"kube_ingress_path{{{ing},host="web.example",path="/",path_type="Prefix",service_name="web",service_port="80"}}"#), "1"),
        (format!(r#"kube_ingress_path{{{ing},host="web.example",path="/named",path_type="Exact",service_name="web",service_port="0"}}"#), "1"),
        (format!(r#"kube_ingress_path{{{ing},host="web.example",path="/static",path_type="ImplementationSpecific",resource_api_group="k8s.example.com",resource_kind="Bucket",resource_name="assets"}}"#), "1"),
        (format!(r#"kube_ingress_tls{{{ing},tls_host="web.example",secret="web-tls"}}"#), "1"),
        (format!(r#"kube_ingress_tls{{{ing},tls_host="www.example",secret="web-tls"}}"#), "1"),
        (r#"kube_ingressclass_info{ingressclass="nginx",controller="k8s.io/ingress-nginx"}"#.into(), "1"),
        (format!(r#"kube_networkpolicy_spec_ingress_rules{{namespace="{ns}",networkpolicy="deny-all"}}"#), "2"),
        (format!(r#"kube_networkpolicy_spec_egress_rules{{namespace="{ns}",networkpolicy="deny-all"}}"#), "0"),
        (format!(r#"kube_replicationcontroller_spec_replicas{{{rc}}}"#), "2"),
        (format!(r#"kube_replicationcontroller_status_replicas{{{rc}}}"#), "2"),
        (format!(r#"kube_replicationcontroller_status_ready_replicas{{{rc}}}"#), "1"),
        (format!(r#"kube_replicationcontroller_status_observed_generation{{{rc}}}"#), "3"),
        (format!(r#"kube_replicationcontroller_status_available_replicas{{{rc}}}"#), "0"),
        (format!(r#"kube_replicationcontroller_metadata_generation{{{rc}}}"#), "3"),
        (format!(r#"kube_replicationcontroller_owner{{{rc},owner_kind="",owner_name="",owner_is_controller=""}}"#), "1"),
        (format!(r#"kube_poddisruptionbudget_labels{{{pdb},label_team="web"}}"#), "1"),
        (format!(r#"kube_poddisruptionbudget_status_current_healthy{{{pdb}}}"#), "2"),
        (format!(r#"kube_poddisruptionbudget_status_pod_disruptions_allowed{{{pdb}}}"#), "1"),
        (format!(r#"kube_poddisruptionbudget_status_expected_pods{{{pdb}}}"#), "2"),
        (format!(r#"kube_poddisruptionbudget_status_desired_healthy{{{pdb}}}"#), "1"),
        (format!(r#"kube_poddisruptionbudget_created{{{pdb}}}"#), "1.7959968e+09"),
        (format!(r#"kube_limitrange{{{lr},resource="cpu",type="Container",constraint="max"}}"#), "2"),
        (format!(r#"kube_limitrange{{{lr},resource="memory",type="Container",constraint="defaultRequest"}}"#), "1.34217728e+08"),
        (format!(r#"kube_limitrange{{{lr},resource="cpu",type="Container",constraint="maxLimitRequestRatio"}}"#), "0.25"),
        // The owner from the references, `namespace` after it; no owner: empty labels.
        (r#"kube_lease_owner{lease="node-1",owner_kind="Node",owner_name="node-1",namespace="kube-node-lease",lease_holder="node-1"}"#.into(), "1"),
        (r#"kube_lease_owner{lease="kube-scheduler",owner_kind="",owner_name="",namespace="kube-system",lease_holder="cp-1_abc"}"#.into(), "1"),
        (r#"kube_lease_renew_time{lease="node-1",namespace="kube-node-lease"}"#.into(), "1.7961192e+09"),
        (r#"kube_storageclass_info{storageclass="standard",provisioner="rancher.io/local-path",reclaim_policy="Delete",volume_binding_mode="Immediate"}"#.into(), "1"),
        (r#"kube_storageclass_info{storageclass="fast",provisioner="ebs.csi.aws.com",reclaim_policy="Retain",volume_binding_mode="WaitForFirstConsumer"}"#.into(), "1"),
        (r#"kube_storageclass_labels{storageclass="standard",label_tier="hdd"}"#.into(), "1"),
        (r#"kube_storageclass_labels{storageclass="fast"}"#.into(), "1"),
        (r#"kube_volumeattachment_labels{volumeattachment="csi-123",label_app_kubernetes_io_name="db"}"#.into(), "1"),
        (r#"kube_volumeattachment_info{volumeattachment="csi-123",attacher="ebs.csi.aws.com",node="node-1"}"#.into(), "1"),
        (r#"kube_volumeattachment_spec_source_persistentvolume{volumeattachment="csi-123",volumename="pv-data"}"#.into(), "1"),
        (r#"kube_volumeattachment_status_attached{volumeattachment="csi-123"}"#.into(), "1"),
        (r#"kube_volumeattachment_status_attachment_metadata{volumeattachment="csi-123",metadata_device_path="/dev/xvdba"}"#.into(), "1"),
        // Conditions counted by type; the certificate's length in bytes.
        (format!(r#"kube_certificatesigningrequest_condition{{{csr},condition="approved"}}"#), "2"),
        (format!(r#"kube_certificatesigningrequest_condition{{{csr},condition="denied"}}"#), "0"),
        (format!(r#"kube_certificatesigningrequest_condition{{{csr},condition="failed"}}"#), "0"),
        (format!(r#"kube_certificatesigningrequest_cert_length{{{csr}}}"#), "10"),
        (format!(r#"kube_certificatesigningrequest_created{{{csr}}}"#), "1.7959968e+09"),
        (r#"kube_mutatingwebhookconfiguration_info{namespace="",mutatingwebhookconfiguration="inject"}"#.into(), "1"),
        (r#"kube_mutatingwebhookconfiguration_webhook_clientconfig_service{namespace="",mutatingwebhookconfiguration="inject",webhook_name="inject.example.com",service_name="injector",service_namespace="mesh"}"#.into(), "1"),
        (r#"kube_mutatingwebhookconfiguration_webhook_clientconfig_service{namespace="",mutatingwebhookconfiguration="inject",webhook_name="url.example.com",service_name="",service_namespace=""}"#.into(), "1"),
        (r#"kube_validatingwebhookconfiguration_info{namespace="",validatingwebhookconfiguration="policy"}"#.into(), "1"),
        // Admission policies and bindings: `namespace` always empty, unset fields empty.
        (r#"kube_validatingadmissionpolicy_info{namespace="",validatingadmissionpolicy="demo-policy",param_api_version="rules.example.com/v1",param_kind="Rule",failure_policy="Fail"}"#.into(), "1"),
        (r#"kube_validatingadmissionpolicy_created{namespace="",validatingadmissionpolicy="demo-policy"}"#.into(), "1.7959968e+09"),
        (r#"kube_validatingadmissionpolicybinding_info{namespace="",validatingadmissionpolicybinding="demo-binding",policy_name="demo-policy",param_name="param1",param_namespace="ns1",param_not_found_action="Deny"}"#.into(), "1"),
        (r#"kube_validatingadmissionpolicybinding_validation_action{namespace="",validatingadmissionpolicybinding="demo-binding",action="Deny"}"#.into(), "1"),
        (r#"kube_validatingadmissionpolicybinding_validation_action{namespace="",validatingadmissionpolicybinding="demo-binding",action="Audit"}"#.into(), "1"),
        (r#"kube_mutatingadmissionpolicy_info{namespace="",mutatingadmissionpolicy="add-label",param_api_version="",param_kind="",failure_policy="",reinvocation_policy="Never"}"#.into(), "1"),
        (r#"kube_mutatingadmissionpolicybinding_info{namespace="",mutatingadmissionpolicybinding="add-label-binding",policy_name="add-label",param_name="",param_namespace="",param_not_found_action=""}"#.into(), "1"),
        // CRDs: no namespace label at all.
        (r#"kube_customresourcedefinition_info{customresourcedefinition="foos.example.com",group="example.com",kind="Foo",scope="Namespaced"}"#.into(), "1"),
        (r#"kube_customresourcedefinition_created{customresourcedefinition="foos.example.com"}"#.into(), "1.7959968e+09"),
        (r#"kube_mutatingwebhookconfiguration_created{namespace="",mutatingwebhookconfiguration="inject"}"#.into(), "1.7959968e+09"),
        (r#"kube_validatingwebhookconfiguration_webhook_clientconfig_service{namespace="",validatingwebhookconfiguration="policy",webhook_name="policy.example.com",service_name="gatekeeper",service_namespace="gk"}"#.into(), "1"),
    ];
    for (key, v) in &want {
        assert_eq!(
            s.get(key).map(String::as_str),
            Some(*v),
            "{key}\n--- exposition:\n{text}"
        );
    }
    // A subset without ports has no address series; a rule without `http`, no path; TLS
    // without hosts, no series; no renew time, no series.
    assert!(!text.contains("10.0.0.5"), "{text}");
    assert!(!text.contains("nohttp.example") && !text.contains("unused"));
    assert!(
        !s.contains_key(r#"kube_lease_renew_time{lease="kube-scheduler",namespace="kube-system"}"#)
    );
    // Resource versions as numbers, as the API server stored them.
    for key in [
        format!(r#"kube_ingress_metadata_resource_version{{{ing}}}"#),
        r#"kube_mutatingwebhookconfiguration_metadata_resource_version{namespace="",mutatingwebhookconfiguration="inject"}"#.to_string(),
    ] {
        let v: f64 = s.get(&key).unwrap_or_else(|| panic!("{key}")).parse().unwrap();
        assert!(v >= 1.0, "{key}: {v}");
    }
    // Families with no sample still have HELP and TYPE, as kube-state-metrics writes them.
    assert!(text.contains("# TYPE kube_ingress_annotations gauge\n"));
    assert!(!s.keys().any(|k| k.starts_with("kube_ingress_annotations{")));
    for help in [
        "# HELP kube_endpoint_ports [STABLE] (Deprecated since v2.14.0) Information about the Endpoint ports.\n",
        "# HELP kube_mutatingwebhookconfiguration_created Unix creation timestamp.\n",
        "# HELP kube_volumeattachment_status_attachment_metadata volumeattachment metadata.\n",
        "# HELP kube_lease_owner Information about the Lease's owner.\n",
        "# HELP kube_limitrange [STABLE] Information about limit range.\n",
    ] {
        assert!(text.contains(help), "{help}");
    }
    // Without `--resources`, kube-state-metrics' default set, all of it rendered: Endpoints
    // (replaced by EndpointSlices in v2.18) and IngressClasses are opt-in.
    let (p, text) = start(None);
    assert!(text.contains("kube_endpointslice_info{"), "{text}");
    assert!(
        text.contains("kube_customresourcedefinition_info{"),
        "{text}"
    );
    assert!(!text.contains("kube_endpoint_") && !text.contains("kube_ingressclass_"));
    assert!(!p.log_text().contains("NOT RENDERED"), "{}", p.log_text());
}

/// kube-state-metrics' custom resource state: a custom kind served by the fake API server,
/// rendered from the config's paths (kube-state-metrics' generator test data: a gauge, an
/// info, a state set), changes and deletions followed through the watch, built-in resources
/// left out with `--custom-resource-state-only`, and a bad config refused by field.
#[test]
fn kube_state_custom_resource_state() {
    let dir = temp_dir("kube-state-crs");
    let k = FakeKube::start();
    // An irregular plural, which only the API server's discovery can tell (the config gives
    // none; "foos" would answer 404).
    let foos = k.serve_custom("bar.example.com/foo", "foozles", "Foo");
    // Another kind of the group, found only through the wildcard entry below.
    k.serve_custom("bar.example.com/v2", "bazzes", "Baz");
    k.apply(json!({"apiVersion": "bar.example.com/v2", "kind": "Baz",
                   "metadata": {"name": "q", "namespace": "default"}}));
    // And a cluster-scoped one: its objects have no namespace for --namespaces to filter.
    k.serve_custom_scoped("bar.example.com/v2", "quxes", "Qux", false);
    k.apply(json!({"apiVersion": "bar.example.com/v2", "kind": "Qux", "metadata": {"name": "c"}}));
    k.apply(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "uid": "uid-p"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "x:1"}]},
        "status": {"phase": "Running"}
    }));
    let foo = |ready: &str| {
        json!({"apiVersion": "bar.example.com/foo", "kind": "Foo",
            "metadata": {"name": "bar", "namespace": "default",
                         "creationTimestamp": "2023-10-17T11:55:39Z",
                         "ownerReferences": [{"apiVersion": "v1", "kind": "foo", "controller": true,
                                              "name": "foo", "uid": "someuid"}]},
            "spec": {"replicas": 3},
            "status": {"conditions": [
                {"lastTransitionTime": "2023-10-12T13:59:02Z", "status": ready, "type": "Ready"}]}})
    };
    k.apply(foo("True"));
    let cfg = dir.join("crs.yaml");
    std::fs::write(
        &cfg,
        r#"kind: CustomResourceStateMetrics
spec:
  resources:
  - groupVersionKind: {group: bar.example.com, version: "*", kind: "*"}
    metricNamePrefix: any
    metrics:
    - name: seen
      help: Objects of the group's kinds no other entry names (this one comes first).
      each: {type: Info, info: {labelsFromPath: {name: [metadata, name]}}}
  - groupVersionKind: {group: bar.example.com, kind: Foo, version: foo}
    metricNamePrefix: foo
    labelsFromPath:
      name: [metadata, name]
      namespace: [metadata, namespace]
    metrics:
    - name: created
      help: Unix creation timestamp.
      each: {type: Gauge, gauge: {path: [metadata, creationTimestamp]}}
    - name: replicas
      help: Wanted replicas.
      each: {type: Gauge, gauge: {path: [spec, replicas]}}
    - name: owner
      help: Owner references.
      each:
        type: Info
        info:
          path: [metadata, ownerReferences]
          labelsFromPath: {owner_kind: [kind], owner_name: [name]}
    - name: status_condition
      help: The condition of a foo.
      each:
        type: StateSet
        stateSet:
          labelName: status
          labelsFromPath: {type: [type]}
          list: ["True", "False"]
          path: [status, conditions]
          valueFrom: [status]
"#,
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let (port, tport) = (free_port(), free_port());
        let mut args = vec![
            "kube-state".to_string(),
            format!("--apiserver={}", k.url()),
            "--host=127.0.0.1".into(),
            format!("--port={port}"),
            "--telemetry-host=127.0.0.1".into(),
            format!("--telemetry-port={tport}"),
            format!("--custom-resource-state-config-file={}", cfg.display()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let p = spawn("vigil-kube-state", &vigil_bin(), &args, &dir);
        wait_for("synced", Duration::from_secs(20), || {
            http("GET", &format!("http://127.0.0.1:{port}/readyz"), None)
                .ok()
                .filter(|(c, _)| *c == 200)
        });
        (p, port, tport)
    };
    let b = r#"customresource_group="bar.example.com",customresource_kind="Foo",customresource_version="foo",name="bar",namespace="default""#;
    let (_only, port, tport) = run(&[
        "--custom-resource-state-only",
        "--resources=pods",
        "--custom-resource-state-discovery-interval=1s",
    ]);
    let (_, text) = get(&format!("http://127.0.0.1:{port}/metrics"));
    for want in [
        "# HELP foo_created Unix creation timestamp.\n# TYPE foo_created gauge\n".to_string(),
        format!("foo_created{{{b}}} 1.697543739e+09\n"),
        format!("foo_replicas{{{b}}} 3\n"),
        // The wildcard found Baz at v2 (Foo is named by the first entry, which keeps it).
        r#"any_seen{customresource_group="bar.example.com",customresource_kind="Baz",customresource_version="v2",name="q"} 1"#.to_string(),
        format!("foo_owner{{{b},owner_kind=\"foo\",owner_name=\"foo\"}} 1\n"),
        format!(
            "foo_status_condition{{{b},status=\"False\",type=\"Ready\"}} 0\nfoo_status_condition{{{b},status=\"True\",type=\"Ready\"}} 1\n"
        ),
    ] {
        assert!(text.contains(&want), "{want}\n---\n{text}");
    }
    assert!(
        !text.contains("kube_pod_"),
        "--custom-resource-state-only: {text}"
    );
    assert!(
        !text.contains(
            r#"any_seen{customresource_group="bar.example.com",customresource_kind="Foo""#
        ),
        "a kind named by one entry is left to it: {text}"
    );
    let (_, tel) = get(&format!("http://127.0.0.1:{tport}/metrics"));
    assert!(
        tel.contains(r#"kube_state_metrics_list_total{resource="*unstructured.Unstructured",result="success"} "#),
        "{tel}"
    );
    assert!(
        tel.contains(r#"vigil_kube_state_objects{resource="foozles.foo.bar.example.com"} 1"#),
        "{tel}"
    );
    // A kind of the wildcard's group whose CRD appears after start is found and watched.
    let zeds = k.serve_custom("bar.example.com/v2", "zeds", "Zed");
    k.apply(json!({"apiVersion": "bar.example.com/v2", "kind": "Zed",
                   "metadata": {"name": "late", "namespace": "default"}}));
    let zed = r#"any_seen{customresource_group="bar.example.com",customresource_kind="Zed",customresource_version="v2",name="late"} 1"#;
    wait_for("the late kind's object", Duration::from_secs(20), || {
        let (_, t) = get(&format!("http://127.0.0.1:{port}/metrics"));
        t.contains(zed).then_some(())
    });
    // Its CRD goes (no deletions reach the watch): the resumed watch is answered 404 and the
    // kind's lines go, as kube-state-metrics drops the stores of CRDs that are removed.
    k.unserve(zeds);
    wait_for(
        "the gone kind's lines dropped",
        Duration::from_secs(30),
        || {
            let (_, t) = get(&format!("http://127.0.0.1:{port}/metrics"));
            (!t.contains("customresource_kind=\"Zed\"")).then_some(())
        },
    );
    // Served again: listed afresh.
    k.serve_custom("bar.example.com/v2", "zeds", "Zed");
    wait_for("the kind's object back", Duration::from_secs(30), || {
        let (_, t) = get(&format!("http://127.0.0.1:{port}/metrics"));
        t.contains(zed).then_some(())
    });
    // A change and a deletion reach the lines through the watch.
    k.apply(foo("False"));
    wait_for("the new condition", Duration::from_secs(20), || {
        let (_, t) = get(&format!("http://127.0.0.1:{port}/metrics"));
        t.contains(&format!(
            "foo_status_condition{{{b},status=\"False\",type=\"Ready\"}} 1\n"
        ))
        .then_some(())
    });
    assert!(k.delete(foos, "default/bar"));
    wait_for("the object gone", Duration::from_secs(20), || {
        let (_, t) = get(&format!("http://127.0.0.1:{port}/metrics"));
        (!t.contains("foo_")).then_some(())
    });
    // With --namespaces: a namespaced kind's objects elsewhere are left out, a
    // cluster-scoped kind's are all there.
    let (_scoped, port, _) = run(&["--custom-resource-state-only", "--namespaces=other"]);
    let (_, text) = get(&format!("http://127.0.0.1:{port}/metrics"));
    assert!(
        text.contains(r#"any_seen{customresource_group="bar.example.com",customresource_kind="Qux",customresource_version="v2",name="c"} 1"#),
        "{text}"
    );
    assert!(!text.contains(r#"name="q""#), "{text}");
    // Without `--custom-resource-state-only`: both.
    k.apply(foo("True"));
    let (_both, port, _) = run(&["--resources=pods"]);
    let (_, text) = get(&format!("http://127.0.0.1:{port}/metrics"));
    assert!(text.contains("kube_pod_info{"), "{text}");
    assert!(text.contains(&format!("foo_replicas{{{b}}} 3\n")), "{text}");
    // A bad config is refused, naming the flag, the resource and the field.
    std::fs::write(
        &cfg,
        "spec:\n  resources:\n  - groupVersionKind: {group: a.io, version: v1, kind: Foo}\n    metrics:\n    - name: m\n      each: {type: Gauge}\n",
    )
    .unwrap();
    let out = std::process::Command::new(vigil_bin())
        .args([
            "kube-state",
            &format!("--custom-resource-state-config-file={}", cfg.display()),
            "--apiserver=http://127.0.0.1:1",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--custom-resource-state-config-file")
            && err.contains(
                "spec.resources[0] (a.io/v1 Foo): metrics[0] (m): expected each.gauge to not be nil"
            ),
        "{err}"
    );
}

/// A named custom kind the API server does not list at start is watched by the English
/// plural (`gizmos`); when its CRD comes with another (`gizmoz`), rediscovery watches it by
/// that one, and its objects appear without a restart.
#[test]
fn kube_state_named_kind_follows_its_crds_plural() {
    let dir = temp_dir("kube-state-guessed");
    let k = FakeKube::start();
    let cfg = dir.join("crs.yaml");
    std::fs::write(
        &cfg,
        r#"kind: CustomResourceStateMetrics
spec:
  resources:
  - groupVersionKind: {group: late.example.com, version: v1, kind: Gizmo}
    metricNamePrefix: gizmo
    labelsFromPath:
      name: [metadata, name]
    metrics:
    - name: info
      help: Gizmos.
      each: {type: Info, info: {labelsFromPath: {uid: [metadata, uid]}}}
"#,
    )
    .unwrap();
    let port = free_port();
    let args = vec![
        "kube-state".to_string(),
        format!("--apiserver={}", k.url()),
        "--host=127.0.0.1".into(),
        format!("--port={port}"),
        "--telemetry-host=127.0.0.1".into(),
        format!("--telemetry-port={}", free_port()),
        format!("--custom-resource-state-config-file={}", cfg.display()),
        "--custom-resource-state-only".into(),
        "--custom-resource-state-discovery-interval=1s".into(),
    ];
    let _p = spawn("vigil-kube-state", &vigil_bin(), &args, &dir);
    wait_for("synced", Duration::from_secs(20), || {
        http("GET", &format!("http://127.0.0.1:{port}/readyz"), None)
            .ok()
            .filter(|(c, _)| *c == 200)
    });
    k.serve_custom("late.example.com/v1", "gizmoz", "Gizmo");
    k.apply(json!({"apiVersion": "late.example.com/v1", "kind": "Gizmo",
                   "metadata": {"name": "g1", "namespace": "default", "uid": "u1"}}));
    wait_for(
        "the gizmo by its CRD's plural",
        Duration::from_secs(30),
        || {
            let (_, t) = get(&format!("http://127.0.0.1:{port}/metrics"));
            t.contains(r#"gizmo_info{customresource_group="late.example.com",customresource_kind="Gizmo",customresource_version="v1",name="g1",uid="u1"} 1"#)
            .then_some(())
        },
    );
    assert!(k.requests().iter().any(|r| r.contains("gizmoz")));
}

/// The rest of kube-state-metrics v2.18's default families of pods, nodes, services,
/// namespaces and deployments, with expectations from its `internal/store/*_test.go` (pod,
/// node, service, namespace and deployment stores) on objects holding the fields they read.
#[test]
fn kube_state_newer_default_families() {
    let dir = temp_dir("kube-state-newer");
    let k = FakeKube::start();
    let ns = "ns1";
    for obj in [
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": ns},
               "status": {"phase": "Terminating",
                          "conditions": [{"type": "NamespaceDeletionContentFailure", "status": "True"}]}}),
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "pod1", "namespace": ns, "uid": "uid1",
                            "deletionTimestamp": "2027-01-15T08:00:00Z"},
               "spec": {"nodeName": "node-1", "restartPolicy": "Always", "serviceAccountName": "service-account-name",
                        "schedulerName": "scheduler1", "runtimeClassName": "foo",
                        "overhead": {"cpu": "250m", "memory": "120Mi"},
                        "initContainers": [{"name": "init1", "image": "k8s.gcr.io/initfoo_spec", "restartPolicy": "Always",
                                            "resources": {"limits": {"cpu": "200m"}, "requests": {"memory": "100M", "nvidia.com/gpu": "1"}}}],
                        "containers": [{"name": "app", "image": "app:1"}, {"name": "side", "image": "side:1"}],
                        "volumes": [{"name": "myvol", "persistentVolumeClaim": {"claimName": "claim1"}},
                                    {"name": "my-readonly-vol", "persistentVolumeClaim": {"claimName": "claim2", "readOnly": true}},
                                    {"name": "scratch", "emptyDir": {}}],
                        "tolerations": [{"key": "key1", "operator": "Equal", "value": "value1", "effect": "NoSchedule"},
                                        {"key": "key2", "operator": "Exists"},
                                        {"key": "key3", "operator": "Equal", "value": "value3"},
                                        {"key": "key3", "operator": "Equal", "value": "value3"},
                                        {"key": "key4", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]},
               "status": {"phase": "Running", "qosClass": "Burstable", "reason": "NodeLost",
                          "podIPs": [{"ip": "1.2.3.4"}, {"ip": "fc00:1234:5678:90ab:cdef:cafe:f00d:d00d"}, {"ip": "not-an-ip"},
                                     {"ip": "010.0.0.1"}, {"ip": "::ffff:10.0.0.2"}],
                          "conditions": [
                              {"type": "Initialized", "status": "True", "lastTransitionTime": "2017-08-02T09:26:58Z"},
                              {"type": "Ready", "status": "True", "lastTransitionTime": "2017-08-02T09:26:58Z"},
                              {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2017-08-02T09:26:58Z"},
                              {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2017-08-02T09:26:58Z"}],
                          "initContainerStatuses": [{"name": "init1", "image": "k8s.gcr.io/initfoo", "imageID": "docker://sha256:wxyz",
                              "containerID": "docker://ef123", "ready": true, "restartCount": 1,
                              "state": {"running": {"startedAt": "2017-08-03T16:16:58Z"}},
                              "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}],
                          "containerStatuses": [
                              {"name": "app", "image": "app:1", "imageID": "app@sha256:1", "ready": true, "restartCount": 1,
                               "state": {"running": {"startedAt": "2017-08-03T16:16:58Z"}},
                               "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                                            "finishedAt": "2017-08-03T16:59:07Z"}}},
                              {"name": "side", "image": "side:1", "imageID": "side@sha256:1", "ready": false, "restartCount": 0,
                               "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                                        "startedAt": "2017-08-03T16:16:58Z",
                                                        "finishedAt": "2017-08-04T23:46:58Z"}}}]}}),
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "pod2", "namespace": ns, "uid": "uid2"},
               "spec": {"containers": [{"name": "c", "image": "c:1"}]},
               "status": {"phase": "Pending",
                          "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                          "lastTransitionTime": "2017-08-02T09:26:58Z"}],
                          "containerStatuses": [{"name": "c", "image": "c:1", "imageID": "", "ready": false,
                                                 "restartCount": 0, "state": {"waiting": {}}}]}}),
        json!({"apiVersion": "v1", "kind": "Node",
               "metadata": {"name": "127.0.0.1", "deletionTimestamp": "2027-01-15T08:00:00Z",
                            "labels": {"node-role.kubernetes.io/master": "", "kubernetes.io/role": "ignored"}},
               "spec": {"taints": [{"key": "node.kubernetes.io/memory-pressure", "value": "true", "effect": "PreferNoSchedule"},
                                   {"key": "Dedicated", "effect": "PreferNoSchedule"}]},
               "status": {"addresses": [{"type": "InternalIP", "address": "1.2.3.4"},
                                        {"type": "ExternalIP", "address": "2001:db8::"}]}}),
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "svc1", "namespace": ns, "uid": "uid-svc1"},
               "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1", "externalIPs": ["1.2.3.9", "1.2.3.10"]},
               "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.8", "hostname": "www.example.com"}]}}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "depl1", "namespace": ns, "deletionTimestamp": "2027-01-15T08:00:00Z"},
               "spec": {"replicas": 200, "selector": {"matchLabels": {"app": "d"}}, "template": {"spec": {"containers": []}},
                        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 10, "maxUnavailable": "10%"}}},
               "status": {"terminatingReplicas": 3}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "depl3", "namespace": ns},
               "spec": {"replicas": 7, "selector": {"matchLabels": {"app": "d"}}, "template": {"spec": {"containers": []}},
                        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "20%", "maxUnavailable": "20%"}}}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "depl2", "namespace": ns,
                            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                                                 "name": "my-app", "uid": "uid-app", "controller": true}]},
               "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "d"}}, "template": {"spec": {"containers": []}},
                        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "20%", "maxUnavailable": "20%"}}}}),
    ] {
        k.apply(obj);
    }
    let (_p, port) = kube_state_ready(
        &dir,
        &k.url(),
        &["--resources=pods,nodes,services,namespaces,deployments"],
    );
    let (code, text) = get(&format!("http://127.0.0.1:{port}/metrics"));
    assert_eq!(code, 200);
    let s = samples(&text);
    let p1 = r#"namespace="ns1",pod="pod1",uid="uid1""#;
    let p2 = r#"namespace="ns1",pod="pod2",uid="uid2""#;
    let sv = r#"namespace="ns1",service="svc1",uid="uid-svc1""#;
    let want: Vec<(String, &str)> = vec![
        // The newest finish of the terminated containers.
        (format!("kube_pod_completion_time{{{p1}}}"), "1.501890418e+09"),
        (format!(r#"kube_pod_container_state_started{{{p1},container="app"}}"#), "1.501777018e+09"),
        (format!(r#"kube_pod_container_state_started{{{p1},container="side"}}"#), "1.501777018e+09"),
        (format!(r#"kube_pod_container_status_last_terminated_exitcode{{{p1},container="app"}}"#), "137"),
        (format!(r#"kube_pod_container_status_last_terminated_timestamp{{{p1},container="app"}}"#), "1.501779547e+09"),
        (format!("kube_pod_deletion_timestamp{{{p1}}}"), "1.8e+09"),
        (format!(r#"kube_pod_ips{{{p1},ip="1.2.3.4",ip_family="4"}}"#), "1"),
        (format!(r#"kube_pod_ips{{{p1},ip="fc00:1234:5678:90ab:cdef:cafe:f00d:d00d",ip_family="6"}}"#), "1"),
        // As Go reads them: leading zeros allowed, an IPv4-mapped address is IPv4.
        (format!(r#"kube_pod_ips{{{p1},ip="010.0.0.1",ip_family="4"}}"#), "1"),
        (format!(r#"kube_pod_ips{{{p1},ip="::ffff:10.0.0.2",ip_family="4"}}"#), "1"),
        (format!(r#"kube_pod_init_container_info{{{p1},container="init1",image_spec="k8s.gcr.io/initfoo_spec",image="k8s.gcr.io/initfoo",image_id="docker://sha256:wxyz",container_id="docker://ef123",restart_policy="Always"}}"#), "1"),
        (format!(r#"kube_pod_init_container_resource_limits{{{p1},container="init1",node="node-1",resource="cpu",unit="core"}}"#), "0.2"),
        (format!(r#"kube_pod_init_container_resource_requests{{{p1},container="init1",node="node-1",resource="memory",unit="byte"}}"#), "1e+08"),
        (format!(r#"kube_pod_init_container_resource_requests{{{p1},container="init1",node="node-1",resource="nvidia_com_gpu",unit="integer"}}"#), "1"),
        (format!(r#"kube_pod_init_container_status_last_terminated_reason{{{p1},container="init1",reason="Error"}}"#), "1"),
        (format!(r#"kube_pod_init_container_status_ready{{{p1},container="init1"}}"#), "1"),
        (format!(r#"kube_pod_init_container_status_restarts_total{{{p1},container="init1"}}"#), "1"),
        (format!(r#"kube_pod_init_container_status_running{{{p1},container="init1"}}"#), "1"),
        (format!(r#"kube_pod_init_container_status_terminated{{{p1},container="init1"}}"#), "0"),
        (format!(r#"kube_pod_init_container_status_waiting{{{p1},container="init1"}}"#), "0"),
        (format!("kube_pod_overhead_cpu_cores{{{p1}}}"), "0.25"),
        (format!("kube_pod_overhead_memory_bytes{{{p1}}}"), "1.2582912e+08"),
        (format!(r#"kube_pod_restart_policy{{{p1},type="Always"}}"#), "1"),
        (format!(r#"kube_pod_restart_policy{{{p2},type=""}}"#), "1"),
        (format!(r#"kube_pod_runtimeclass_name_info{{{p1},runtimeclass_name="foo"}}"#), "1"),
        (format!(r#"kube_pod_spec_volumes_persistentvolumeclaims_info{{{p1},volume="myvol",persistentvolumeclaim="claim1"}}"#), "1"),
        (format!(r#"kube_pod_spec_volumes_persistentvolumeclaims_readonly{{{p1},volume="my-readonly-vol",persistentvolumeclaim="claim2"}}"#), "1"),
        (format!(r#"kube_pod_spec_volumes_persistentvolumeclaims_readonly{{{p1},volume="myvol",persistentvolumeclaim="claim1"}}"#), "0"),
        (format!(r#"kube_pod_status_qos_class{{{p1},qos_class="BestEffort"}}"#), "0"),
        (format!(r#"kube_pod_status_qos_class{{{p1},qos_class="Burstable"}}"#), "1"),
        (format!(r#"kube_pod_status_qos_class{{{p1},qos_class="Guaranteed"}}"#), "0"),
        (format!("kube_pod_status_ready_time{{{p1}}}"), "1.501666018e+09"),
        (format!("kube_pod_status_initialized_time{{{p1}}}"), "1.501666018e+09"),
        (format!("kube_pod_status_container_ready_time{{{p1}}}"), "1.501666018e+09"),
        (format!("kube_pod_status_scheduled_time{{{p1}}}"), "1.501666018e+09"),
        (format!(r#"kube_pod_status_reason{{{p1},reason="Evicted"}}"#), "0"),
        (format!(r#"kube_pod_status_reason{{{p1},reason="NodeLost"}}"#), "1"),
        (format!(r#"kube_pod_status_reason{{{p1},reason="UnexpectedAdmissionError"}}"#), "0"),
        (format!(r#"kube_pod_status_reason{{{p2},reason="NodeLost"}}"#), "0"),
        (format!("kube_pod_status_unschedulable{{{p2}}}"), "1"),
        (format!("kube_pod_status_unscheduled_time{{{p2}}}"), "1.501666018e+09"),
        (format!(r#"kube_pod_tolerations{{{p1},key="key1",operator="Equal",value="value1",effect="NoSchedule",toleration_seconds=""}}"#), "1"),
        (format!(r#"kube_pod_tolerations{{{p1},key="key2",operator="Exists",value="",effect="",toleration_seconds=""}}"#), "1"),
        (format!(r#"kube_pod_tolerations{{{p1},key="key3",operator="Equal",value="value3",effect="",toleration_seconds=""}}"#), "1"),
        (format!(r#"kube_pod_tolerations{{{p1},key="key4",operator="Exists",value="",effect="NoExecute",toleration_seconds="300"}}"#), "1"),
        (format!(r#"kube_pod_service_account{{{p1},service_account="service-account-name"}}"#), "1"),
        (format!(r#"kube_pod_scheduler{{{p1},name="scheduler1"}}"#), "1"),
        (format!(r#"kube_pod_scheduler{{{p2},name=""}}"#), "1"),
        // A state without a reason still writes one, empty.
        (format!(r#"kube_pod_container_status_waiting_reason{{{p2},container="c",reason=""}}"#), "1"),
        (r#"kube_node_deletion_timestamp{node="127.0.0.1"}"#.into(), "1.8e+09"),
        (r#"kube_node_role{node="127.0.0.1",role="master"}"#.into(), "1"),
        (r#"kube_node_spec_taint{node="127.0.0.1",key="node.kubernetes.io/memory-pressure",value="true",effect="PreferNoSchedule"}"#.into(), "1"),
        (r#"kube_node_spec_taint{node="127.0.0.1",key="Dedicated",value="",effect="PreferNoSchedule"}"#.into(), "1"),
        (r#"kube_node_status_addresses{node="127.0.0.1",type="InternalIP",address="1.2.3.4"}"#.into(), "1"),
        (r#"kube_node_status_addresses{node="127.0.0.1",type="ExternalIP",address="2001:db8::"}"#.into(), "1"),
        (format!(r#"kube_service_spec_external_ip{{{sv},external_ip="1.2.3.9"}}"#), "1"),
        (format!(r#"kube_service_spec_external_ip{{{sv},external_ip="1.2.3.10"}}"#), "1"),
        (format!(r#"kube_service_status_load_balancer_ingress{{{sv},ip="1.2.3.8",hostname="www.example.com"}}"#), "1"),
        (r#"kube_namespace_status_condition{namespace="ns1",condition="NamespaceDeletionContentFailure",status="true"}"#.into(), "1"),
        (r#"kube_namespace_status_condition{namespace="ns1",condition="NamespaceDeletionContentFailure",status="false"}"#.into(), "0"),
        (r#"kube_deployment_spec_strategy_rollingupdate_max_surge{namespace="ns1",deployment="depl1"}"#.into(), "10"),
        // A percentage of the replicas: up for surge, down for unavailable.
        (r#"kube_deployment_spec_strategy_rollingupdate_max_surge{namespace="ns1",deployment="depl2"}"#.into(), "1"),
        (r#"kube_deployment_spec_strategy_rollingupdate_max_unavailable{namespace="ns1",deployment="depl2"}"#.into(), "1"),
        (r#"kube_deployment_spec_strategy_rollingupdate_max_unavailable{namespace="ns1",deployment="depl1"}"#.into(), "20"),
        // 20% of 7 is 1.4.
        (r#"kube_deployment_spec_strategy_rollingupdate_max_surge{namespace="ns1",deployment="depl3"}"#.into(), "2"),
        (r#"kube_deployment_spec_strategy_rollingupdate_max_unavailable{namespace="ns1",deployment="depl3"}"#.into(), "1"),
        (r#"kube_deployment_status_terminating_replicas{namespace="ns1",deployment="depl1"}"#.into(), "3"),
        (r#"kube_deployment_deletion_timestamp{namespace="ns1",deployment="depl1"}"#.into(), "1.8e+09"),
        (r#"kube_deployment_owner{namespace="ns1",deployment="depl1",owner_kind="",owner_name=""}"#.into(), "1"),
        (r#"kube_deployment_owner{namespace="ns1",deployment="depl2",owner_kind="Application",owner_name="my-app"}"#.into(), "1"),
    ];
    for (key, v) in &want {
        assert_eq!(
            s.get(key).map(String::as_str),
            Some(*v),
            "{key}\n--- exposition:\n{text}"
        );
    }
    // Every reason is written; a toleration written twice is one series; an address that does
    // not parse, nothing; a pod that is not deleted, not terminated or without a runtime class,
    // no sample; no terminating replicas, no sample.
    assert_eq!(
        s.keys()
            .filter(|k| k.starts_with(&format!("kube_pod_status_reason{{{p1}")))
            .count(),
        5
    );
    assert_eq!(
        s.keys()
            .filter(|k| k.starts_with(&format!("kube_pod_tolerations{{{p1}")))
            .count(),
        4
    );
    assert!(!text.contains("not-an-ip"));
    for absent in [
        format!("kube_pod_deletion_timestamp{{{p2}}}"),
        format!("kube_pod_completion_time{{{p2}}}"),
        format!(r#"kube_pod_runtimeclass_name_info{{{p2},runtimeclass_name=""}}"#),
        format!("kube_pod_status_unschedulable{{{p1}}}"),
        r#"kube_deployment_status_terminating_replicas{namespace="ns1",deployment="depl2"}"#.into(),
    ] {
        assert!(!s.contains_key(&absent), "{absent}");
    }
    for help in [
        "# HELP kube_pod_status_reason The pod status reasons\n",
        "# HELP kube_node_spec_taint [STABLE] The taint of a cluster node.\n",
        "# TYPE kube_pod_init_container_status_restarts_total counter\n",
        "# HELP kube_service_status_load_balancer_ingress [STABLE] Service load balancer ingress status\n",
    ] {
        assert!(text.contains(help), "{help}");
    }
}
