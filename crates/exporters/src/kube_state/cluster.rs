//! Cluster-level objects: Leases, CertificateSigningRequests, admission webhook configurations,
//! admission policies and their bindings, and CustomResourceDefinitions, as kube-state-metrics'
//! internal/store/lease.go, certificatesigningrequest.go, {mutating,validating}webhookconfiguration.go,
//! {mutating,validating}admissionpolicy{,binding}.go and customresourcedefinition.go render them.

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::families::{Options, created, resource_version, s, with_annotations};
use super::objects::{
    BindingSpec, CrdMeta, MutatingBinding, MutatingPolicy, PolicySpec, ValidatingBinding,
    ValidatingPolicy,
};
use super::text::{Family, Rendered, gauge};

// ---- leases ----

pub const LEASE: [Family; 2] = [
    gauge("kube_lease_owner", "Information about the Lease's owner."),
    gauge("kube_lease_renew_time", "Kube lease renew time."),
];

pub fn lease_families() -> Vec<Family> {
    LEASE.to_vec()
}

/// The owner from the owner references (a node's lease names its Node), the holder from the
/// spec; `namespace` after them, where kube-state-metrics puts it.
pub fn render_lease(l: &Lease, _o: &Options) -> Rendered {
    let fams = lease_families();
    let mut r = Rendered::new(fams.len());
    let m = &l.metadata;
    let (name, ns) = (s(&m.name), s(&m.namespace));
    let holder = l
        .spec
        .as_ref()
        .and_then(|x| x.holder_identity.as_deref())
        .unwrap_or("");
    let owners: Vec<(&str, &str)> = match m.owner_references.as_deref() {
        Some(refs) if !refs.is_empty() => refs
            .iter()
            .map(|o| (o.kind.as_str(), o.name.as_str()))
            .collect(),
        _ => vec![("", "")],
    };
    for (kind, owner) in owners {
        let labels = [
            ("lease", name),
            ("owner_kind", kind),
            ("owner_name", owner),
            ("namespace", ns),
            ("lease_holder", holder),
        ];
        r.add(&fams[0], 0, &labels, 1.0);
    }
    if let Some(t) = l.spec.as_ref().and_then(|x| x.renew_time.as_ref()) {
        r.add(
            &fams[1],
            1,
            &[("lease", name), ("namespace", ns)],
            t.0.as_second() as f64,
        );
    }
    r
}

// ---- certificatesigningrequests ----

pub const CSR: [Family; 4] = [
    gauge(
        "kube_certificatesigningrequest_labels",
        "[STABLE] Kubernetes labels converted to Prometheus labels.",
    ),
    gauge(
        "kube_certificatesigningrequest_created",
        "[STABLE] Unix creation timestamp",
    ),
    gauge(
        "kube_certificatesigningrequest_condition",
        "[STABLE] The number of each certificatesigningrequest condition",
    ),
    gauge(
        "kube_certificatesigningrequest_cert_length",
        "[STABLE] Length of the issued cert",
    ),
];

pub fn csr_families() -> Vec<Family> {
    with_annotations(&CSR, "kube_certificatesigningrequest_annotations")
}

/// Conditions are counted by type (their status is not read), as kube-state-metrics counts
/// them; the certificate's length is that of its PEM bytes.
pub fn render_csr(c: &CertificateSigningRequest, o: &Options) -> Rendered {
    let fams = csr_families();
    let mut r = Rendered::new(fams.len());
    let m = &c.metadata;
    let base = [
        ("certificatesigningrequest", s(&m.name)),
        ("signer_name", c.spec.signer_name.as_str()),
    ];
    if let Some(extra) = o.labels("certificatesigningrequests", m) {
        r.add_with(&fams[0], 0, &base, &extra, 1.0);
    }
    if let Some(t) = created(m) {
        r.add(&fams[1], 1, &base, t);
    }
    let st = c.status.as_ref();
    let conds: Vec<&str> = st
        .and_then(|x| x.conditions.as_ref())
        .into_iter()
        .flatten()
        .map(|c| c.type_.as_str())
        .collect();
    for (label, ty) in [
        ("approved", "Approved"),
        ("denied", "Denied"),
        ("failed", "Failed"),
    ] {
        let mut l = base.to_vec();
        l.push(("condition", label));
        let n = conds.iter().filter(|c| **c == ty).count();
        r.add(&fams[2], 2, &l, n as f64);
    }
    let len = st
        .and_then(|x| x.certificate.as_ref())
        .map_or(0, |b| b.0.len());
    r.add(&fams[3], 3, &base, len as f64);
    if let Some(extra) = o.annotations("certificatesigningrequests", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}

// ---- mutating and validating webhook configurations ----

pub const MUTATING: [Family; 4] = webhook_families(
    [
        "kube_mutatingwebhookconfiguration_info",
        "kube_mutatingwebhookconfiguration_created",
        "kube_mutatingwebhookconfiguration_metadata_resource_version",
        "kube_mutatingwebhookconfiguration_webhook_clientconfig_service",
    ],
    [
        "Information about the MutatingWebhookConfiguration.",
        "Resource version representing a specific version of the MutatingWebhookConfiguration.",
        "Service used by the apiserver to connect to a mutating webhook.",
    ],
);

pub const VALIDATING: [Family; 4] = webhook_families(
    [
        "kube_validatingwebhookconfiguration_info",
        "kube_validatingwebhookconfiguration_created",
        "kube_validatingwebhookconfiguration_metadata_resource_version",
        "kube_validatingwebhookconfiguration_webhook_clientconfig_service",
    ],
    [
        "Information about the ValidatingWebhookConfiguration.",
        "Resource version representing a specific version of the ValidatingWebhookConfiguration.",
        "Service used by the apiserver to connect to a validating webhook.",
    ],
);

/// Both kinds have the same four families; only names and help differ.
const fn webhook_families(names: [&'static str; 4], help: [&'static str; 3]) -> [Family; 4] {
    [
        gauge(names[0], help[0]),
        // With a full stop, unlike other resources' creation families.
        gauge(names[1], "Unix creation timestamp."),
        gauge(names[2], help[1]),
        gauge(names[3], help[2]),
    ]
}

pub fn mutating_families() -> Vec<Family> {
    MUTATING.to_vec()
}

pub fn validating_families() -> Vec<Family> {
    VALIDATING.to_vec()
}

/// `namespace` is always empty (the kind is cluster-scoped) and still written first, as
/// kube-state-metrics writes it; a webhook called by URL has empty service labels.
fn render_webhooks<'a>(
    fams: &[Family],
    kind: &'static str,
    m: &'a ObjectMeta,
    hooks: impl Iterator<Item = (&'a str, &'a WebhookClientConfig)>,
) -> Rendered {
    let mut r = Rendered::new(fams.len());
    let base = [("namespace", s(&m.namespace)), (kind, s(&m.name))];
    r.add(&fams[0], 0, &base, 1.0);
    if let Some(t) = created(m) {
        r.add(&fams[1], 1, &base, t);
    }
    if let Some(v) = resource_version(m) {
        r.add(&fams[2], 2, &base, v);
    }
    for (name, cc) in hooks {
        let svc = cc.service.as_ref();
        let mut l = base.to_vec();
        l.extend([
            ("webhook_name", name),
            ("service_name", svc.map_or("", |x| x.name.as_str())),
            (
                "service_namespace",
                svc.map_or("", |x| x.namespace.as_str()),
            ),
        ]);
        r.add(&fams[3], 3, &l, 1.0);
    }
    r
}

pub fn render_mutating(c: &MutatingWebhookConfiguration, _o: &Options) -> Rendered {
    let hooks = c.webhooks.iter().flatten();
    render_webhooks(
        &MUTATING,
        "mutatingwebhookconfiguration",
        &c.metadata,
        hooks.map(|h| (h.name.as_str(), &h.client_config)),
    )
}

pub fn render_validating(c: &ValidatingWebhookConfiguration, _o: &Options) -> Rendered {
    let hooks = c.webhooks.iter().flatten();
    render_webhooks(
        &VALIDATING,
        "validatingwebhookconfiguration",
        &c.metadata,
        hooks.map(|h| (h.name.as_str(), &h.client_config)),
    )
}

// ---- admission policies and their bindings ----

/// `namespace` is always empty (cluster-scoped) and still written first, as for webhook
/// configurations; unset fields are empty labels.
fn policy_base<'a>(kind: &'static str, m: &'a ObjectMeta) -> [(&'static str, &'a str); 2] {
    [("namespace", s(&m.namespace)), (kind, s(&m.name))]
}

pub const VALIDATING_POLICY: [Family; 2] = [
    gauge(
        "kube_validatingadmissionpolicy_info",
        "Information about the ValidatingAdmissionPolicy.",
    ),
    gauge(
        "kube_validatingadmissionpolicy_created",
        "Unix creation timestamp.",
    ),
];

pub const MUTATING_POLICY: [Family; 2] = [
    gauge(
        "kube_mutatingadmissionpolicy_info",
        "Information about the MutatingAdmissionPolicy.",
    ),
    gauge(
        "kube_mutatingadmissionpolicy_created",
        "Unix creation timestamp.",
    ),
];

pub fn validating_policy_families() -> Vec<Family> {
    VALIDATING_POLICY.to_vec()
}

pub fn mutating_policy_families() -> Vec<Family> {
    MUTATING_POLICY.to_vec()
}

fn render_policy(
    fams: &[Family],
    kind: &'static str,
    m: &ObjectMeta,
    spec: &PolicySpec,
    reinvocation: bool,
) -> Rendered {
    let mut r = Rendered::new(fams.len());
    let base = policy_base(kind, m);
    let pk = spec.param_kind.as_ref();
    let mut l = base.to_vec();
    l.extend([
        ("param_api_version", pk.map_or("", |p| s(&p.api_version))),
        ("param_kind", pk.map_or("", |p| s(&p.kind))),
        ("failure_policy", s(&spec.failure_policy)),
    ]);
    if reinvocation {
        l.push(("reinvocation_policy", s(&spec.reinvocation_policy)));
    }
    r.add(&fams[0], 0, &l, 1.0);
    if let Some(t) = created(m) {
        r.add(&fams[1], 1, &base, t);
    }
    r
}

pub fn render_validating_policy(p: &ValidatingPolicy, _o: &Options) -> Rendered {
    render_policy(
        &VALIDATING_POLICY,
        "validatingadmissionpolicy",
        &p.metadata,
        &p.spec,
        false,
    )
}

pub fn render_mutating_policy(p: &MutatingPolicy, _o: &Options) -> Rendered {
    render_policy(
        &MUTATING_POLICY,
        "mutatingadmissionpolicy",
        &p.metadata,
        &p.spec,
        true,
    )
}

pub const VALIDATING_BINDING: [Family; 3] = [
    gauge(
        "kube_validatingadmissionpolicybinding_info",
        "Information about the ValidatingAdmissionPolicyBinding.",
    ),
    gauge(
        "kube_validatingadmissionpolicybinding_created",
        "Unix creation timestamp.",
    ),
    gauge(
        "kube_validatingadmissionpolicybinding_validation_action",
        "Validation actions for the ValidatingAdmissionPolicyBinding.",
    ),
];

pub const MUTATING_BINDING: [Family; 2] = [
    gauge(
        "kube_mutatingadmissionpolicybinding_info",
        "Information about the MutatingAdmissionPolicyBinding.",
    ),
    gauge(
        "kube_mutatingadmissionpolicybinding_created",
        "Unix creation timestamp.",
    ),
];

pub fn validating_binding_families() -> Vec<Family> {
    VALIDATING_BINDING.to_vec()
}

pub fn mutating_binding_families() -> Vec<Family> {
    MUTATING_BINDING.to_vec()
}

/// A parameter given by selector has an empty `param_name` (the selector is not reported).
fn render_binding(
    fams: &[Family],
    kind: &'static str,
    m: &ObjectMeta,
    spec: &BindingSpec,
) -> Rendered {
    let mut r = Rendered::new(fams.len());
    let base = policy_base(kind, m);
    let pr = spec.param_ref.as_ref();
    let mut l = base.to_vec();
    l.extend([
        ("policy_name", spec.policy_name.as_str()),
        ("param_name", pr.map_or("", |p| s(&p.name))),
        ("param_namespace", pr.map_or("", |p| s(&p.namespace))),
        (
            "param_not_found_action",
            pr.map_or("", |p| s(&p.parameter_not_found_action)),
        ),
    ]);
    r.add(&fams[0], 0, &l, 1.0);
    if let Some(t) = created(m) {
        r.add(&fams[1], 1, &base, t);
    }
    if fams.len() > 2 {
        for action in &spec.validation_actions {
            let mut l = base.to_vec();
            l.push(("action", action.as_str()));
            r.add(&fams[2], 2, &l, 1.0);
        }
    }
    r
}

pub fn render_validating_binding(b: &ValidatingBinding, _o: &Options) -> Rendered {
    render_binding(
        &VALIDATING_BINDING,
        "validatingadmissionpolicybinding",
        &b.metadata,
        &b.spec,
    )
}

pub fn render_mutating_binding(b: &MutatingBinding, _o: &Options) -> Rendered {
    render_binding(
        &MUTATING_BINDING,
        "mutatingadmissionpolicybinding",
        &b.metadata,
        &b.spec,
    )
}

// ---- customresourcedefinitions ----

pub const CRD: [Family; 3] = [
    gauge(
        "kube_customresourcedefinition_info",
        "Information about a CustomResourceDefinition.",
    ),
    gauge(
        "kube_customresourcedefinition_created",
        "Unix creation timestamp",
    ),
    gauge(
        "kube_customresourcedefinition_labels",
        "Kubernetes labels converted to Prometheus labels.",
    ),
];

pub fn crd_families() -> Vec<Family> {
    with_annotations(&CRD, "kube_customresourcedefinition_annotations")
}

/// No `namespace` label at all, unlike the other cluster-scoped kinds.
pub fn render_crd(c: &CrdMeta, o: &Options) -> Rendered {
    let fams = crd_families();
    let mut r = Rendered::new(fams.len());
    let m = &c.metadata;
    let base = [("customresourcedefinition", s(&m.name))];
    let mut l = base.to_vec();
    l.extend([
        ("group", c.spec.group.as_str()),
        ("kind", c.spec.names.kind.as_str()),
        ("scope", c.spec.scope.as_str()),
    ]);
    r.add(&fams[0], 0, &l, 1.0);
    if let Some(t) = created(m) {
        r.add(&fams[1], 1, &base, t);
    }
    if let Some(extra) = o.labels("customresourcedefinitions", m) {
        r.add_with(&fams[2], 2, &base, &extra, 1.0);
    }
    if let Some(extra) = o.annotations("customresourcedefinitions", m) {
        let i = fams.len() - 1;
        r.add_with(&fams[i], i, &base, &extra, 1.0);
    }
    r
}
