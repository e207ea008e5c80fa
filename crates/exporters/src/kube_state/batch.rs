//! Jobs and CronJobs (the `batch/v1` API): kube-state-metrics' `kube_job_*` and
//! `kube_cronjob_*` families, from its internal/store/job.go and cronjob.go. The
//! kubernetes-mixin's `KubeJobNotCompleted` and `KubeJobFailed` alerts read them.

use k8s_openapi::api::batch::v1::{CronJob, Job};

use super::cron;
use super::families::{
    Options, condition_series, created, owner_series, resource_version, s, with_annotations,
};
use super::text::{Family, Rendered, gauge};

pub const JOB: [Family; 16] = [
    gauge(
        "kube_job_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
    gauge("kube_job_info", "[STABLE] Information about job."),
    gauge("kube_job_created", "[STABLE] Unix creation timestamp"),
    gauge(
        "kube_job_spec_parallelism",
        "[STABLE] The maximum desired number of pods the job should run at any given time.",
    ),
    gauge(
        "kube_job_spec_completions",
        "[STABLE] The desired number of successfully finished pods the job should be run with.",
    ),
    gauge(
        "kube_job_spec_active_deadline_seconds",
        "[STABLE] The duration in seconds relative to the startTime that the job may be active before the system tries to terminate it.",
    ),
    gauge(
        "kube_job_status_succeeded",
        "[STABLE] The number of pods which reached Phase Succeeded.",
    ),
    gauge(
        "kube_job_status_failed",
        "[STABLE] The number of pods which reached Phase Failed and the reason for failure.",
    ),
    gauge(
        "kube_job_status_active",
        "[STABLE] The number of actively running pods.",
    ),
    gauge(
        "kube_job_status_ready",
        "The number of ready pods that belong to this Job.",
    ),
    gauge(
        "kube_job_complete",
        "[STABLE] The job has completed its execution.",
    ),
    gauge(
        "kube_job_failed",
        "[STABLE] The job has failed its execution.",
    ),
    gauge(
        "kube_job_status_start_time",
        "[STABLE] StartTime represents time when the job was acknowledged by the Job Manager.",
    ),
    gauge(
        "kube_job_status_completion_time",
        "[STABLE] CompletionTime represents time when the job was completed.",
    ),
    gauge(
        "kube_job_status_suspended",
        "The number of pods which reached Phase Suspended.",
    ),
    gauge(
        "kube_job_owner",
        "[STABLE] Information about the Job's owner.",
    ),
];

pub fn job_families() -> Vec<Family> {
    with_annotations(&JOB, "kube_job_annotations")
}

/// The failure reasons `kube_job_status_failed` has a series for, as kube-state-metrics lists
/// them.
const FAILED_REASONS: [&str; 3] = ["BackoffLimitExceeded", "DeadlineExceeded", "Evicted"];

pub fn render_job(j: &Job, o: &Options) -> Rendered {
    let fams = job_families();
    let mut r = Rendered::new(fams.len());
    let m = &j.metadata;
    let base = [("namespace", s(&m.namespace)), ("job_name", s(&m.name))];
    if let Some(extra) = o.labels("jobs", m) {
        r.add_with(&fams[0], 0, &base, &extra, 1.0);
    }
    r.add(&fams[1], 1, &base, 1.0);
    if let Some(t) = created(m) {
        r.add(&fams[2], 2, &base, t);
    }
    let spec = j.spec.as_ref();
    for (i, v) in [
        (3, spec.and_then(|x| x.parallelism).map(i64::from)),
        (4, spec.and_then(|x| x.completions).map(i64::from)),
        (5, spec.and_then(|x| x.active_deadline_seconds)),
    ] {
        if let Some(v) = v {
            r.add(&fams[i], i, &base, v as f64);
        }
    }
    let st = j.status.as_ref();
    r.add(
        &fams[6],
        6,
        &base,
        st.and_then(|x| x.succeeded).unwrap_or(0) as f64,
    );
    let failed = st.and_then(|x| x.failed).unwrap_or(0);
    let conditions: Vec<_> = st
        .and_then(|x| x.conditions.as_ref())
        .into_iter()
        .flatten()
        .collect();
    if failed == 0 {
        r.add(&fams[7], 7, &base, 0.0);
    } else {
        // Per Failed condition, a 1/0 flag for each known reason; the count itself goes to a
        // `reason=""` series when no known reason explains the failure.
        let mut explained = false;
        for c in conditions.iter().filter(|c| c.type_ == "Failed") {
            for reason in FAILED_REASONS {
                let hit = c.reason.as_deref() == Some(reason);
                explained |= hit;
                let mut l = base.to_vec();
                l.push(("reason", reason));
                r.add(&fams[7], 7, &l, if hit { 1.0 } else { 0.0 });
            }
        }
        if !explained {
            let mut l = base.to_vec();
            l.push(("reason", ""));
            r.add(&fams[7], 7, &l, failed as f64);
        }
    }
    r.add(
        &fams[8],
        8,
        &base,
        st.and_then(|x| x.active).unwrap_or(0) as f64,
    );
    r.add(
        &fams[9],
        9,
        &base,
        st.and_then(|x| x.ready).unwrap_or(0) as f64,
    );
    for (i, kind) in [(10, "Complete"), (11, "Failed")] {
        for c in conditions.iter().filter(|c| c.type_ == kind) {
            condition_series(&mut r, &fams, i, &base, Some(c.status.as_str()));
        }
    }
    for (i, t) in [
        (12, st.and_then(|x| x.start_time.as_ref())),
        (13, st.and_then(|x| x.completion_time.as_ref())),
    ] {
        if let Some(t) = t {
            r.add(&fams[i], i, &base, t.0.as_second() as f64);
        }
    }
    for c in conditions.iter().filter(|c| c.type_ == "Suspended") {
        r.add(
            &fams[14],
            14,
            &base,
            if c.status == "True" { 1.0 } else { 0.0 },
        );
    }
    owner_series(&mut r, &fams[15], 15, &base, m);
    if let Some(extra) = o.annotations("jobs", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}

pub const CRONJOB: [Family; 13] = [
    gauge(
        "kube_cronjob_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
    gauge("kube_cronjob_info", "[STABLE] Info about cronjob."),
    gauge("kube_cronjob_created", "[STABLE] Unix creation timestamp"),
    gauge(
        "kube_cronjob_status_active",
        "[STABLE] Active holds pointers to currently running jobs.",
    ),
    gauge(
        "kube_cronjob_status_last_schedule_time",
        "[STABLE] LastScheduleTime keeps information of when was the last time the job was successfully scheduled.",
    ),
    gauge(
        "kube_cronjob_status_last_successful_time",
        "[STABLE] LastSuccessfulTime keeps information of when was the last time the job was completed successfully.",
    ),
    gauge(
        "kube_cronjob_spec_suspend",
        "[STABLE] Suspend flag tells the controller to suspend subsequent executions.",
    ),
    gauge(
        "kube_cronjob_spec_starting_deadline_seconds",
        "[STABLE] Deadline in seconds for starting the job if it misses scheduled time for any reason.",
    ),
    gauge(
        "kube_cronjob_next_schedule_time",
        "[STABLE] Next time the cronjob should be scheduled. The time after lastScheduleTime, or after the cron job's creation time if it's never been scheduled. Use this to determine if the job is delayed.",
    ),
    gauge(
        "kube_cronjob_metadata_resource_version",
        "[STABLE] Resource version representing a specific version of the cronjob.",
    ),
    gauge(
        "kube_cronjob_spec_successful_job_history_limit",
        "Successful job history limit tells the controller how many completed jobs should be preserved.",
    ),
    gauge(
        "kube_cronjob_spec_failed_job_history_limit",
        "Failed job history limit tells the controller how many failed jobs should be preserved.",
    ),
    gauge(
        "kube_cronjob_schedule_invalid",
        "Emitted with value 1 for cronjobs whose schedule, in its configured timezone, cannot be parsed.",
    ),
];

pub fn cronjob_families() -> Vec<Family> {
    with_annotations(&CRONJOB, "kube_cronjob_annotations")
}

pub fn render_cronjob(cj: &CronJob, o: &Options) -> Rendered {
    let fams = cronjob_families();
    let mut r = Rendered::new(fams.len());
    let m = &cj.metadata;
    let base = [("namespace", s(&m.namespace)), ("cronjob", s(&m.name))];
    if let Some(extra) = o.labels("cronjobs", m) {
        r.add_with(&fams[0], 0, &base, &extra, 1.0);
    }
    let spec = cj.spec.as_ref();
    let schedule = spec.map_or("", |x| x.schedule.as_str());
    let tz = spec.and_then(|x| x.time_zone.as_deref());
    let mut l = base.to_vec();
    l.extend([
        ("schedule", schedule),
        (
            "concurrency_policy",
            spec.map_or("", |x| s(&x.concurrency_policy)),
        ),
        ("timezone", tz.unwrap_or("local")),
    ]);
    r.add(&fams[1], 1, &l, 1.0);
    let created_at = created(m);
    if let Some(t) = created_at {
        r.add(&fams[2], 2, &base, t);
    }
    let st = cj.status.as_ref();
    r.add(
        &fams[3],
        3,
        &base,
        st.and_then(|x| x.active.as_ref()).map_or(0, Vec::len) as f64,
    );
    let last = st
        .and_then(|x| x.last_schedule_time.as_ref())
        .map(|t| t.0.as_second());
    if let Some(t) = last {
        r.add(&fams[4], 4, &base, t as f64);
    }
    if let Some(t) = st.and_then(|x| x.last_successful_time.as_ref()) {
        r.add(&fams[5], 5, &base, t.0.as_second() as f64);
    }
    let suspended = spec.and_then(|x| x.suspend);
    if let Some(sus) = suspended {
        r.add(&fams[6], 6, &base, if sus { 1.0 } else { 0.0 });
    }
    if let Some(d) = spec.and_then(|x| x.starting_deadline_seconds) {
        r.add(&fams[7], 7, &base, d as f64);
    }
    // The next run after the last one (or after creation when it never ran), in the job's
    // time zone; none while suspended. A schedule that does not parse is reported, not fatal.
    match cron::Schedule::parse(schedule, tz) {
        Ok(sched) => {
            let from = last.filter(|t| *t != 0).or(created_at.map(|t| t as i64));
            if suspended != Some(true)
                && let Some(next) = from.and_then(|t| sched.next_after(t))
            {
                r.add(&fams[8], 8, &base, next as f64);
            }
        }
        Err(e) => {
            tracing::debug!(
                cronjob = s(&m.name),
                "schedule {schedule:?} is invalid: {e}"
            );
            r.add(&fams[12], 12, &base, 1.0);
        }
    }
    if let Some(v) = resource_version(m) {
        r.add(&fams[9], 9, &base, v);
    }
    for (i, v) in [
        (10, spec.and_then(|x| x.successful_jobs_history_limit)),
        (11, spec.and_then(|x| x.failed_jobs_history_limit)),
    ] {
        if let Some(v) = v {
            r.add(&fams[i], i, &base, v as f64);
        }
    }
    if let Some(extra) = o.annotations("cronjobs", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}
