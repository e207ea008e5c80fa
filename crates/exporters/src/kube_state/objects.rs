//! Slim views of objects: those whose payload kube-state never reports (a ConfigMap's and a
//! Secret's data), deserialized with their metadata (and a Secret's type) only, so the data
//! is skipped while reading, never held, and cannot reach a family by mistake; and those it
//! reads a few fields of (CustomResourceDefinitions, admission policies and their bindings),
//! whose API versions the Kubernetes types vigil builds with may not have (mutating admission
//! policies are `v1` from Kubernetes 1.36).

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::{ClusterResourceScope, NamespaceResourceScope};
use serde::Deserialize;

/// A ConfigMap's metadata (`data` and `binaryData` are skipped).
#[derive(Clone, Debug, Deserialize)]
pub struct ConfigMapMeta {
    #[serde(default)]
    pub metadata: ObjectMeta,
}

/// A Secret's metadata and type (`data` and `stringData` are skipped).
#[derive(Clone, Debug, Deserialize)]
pub struct SecretMeta {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(rename = "type")]
    pub type_: Option<String>,
}

/// `kube::Resource` for a slim view: its scope, group, kind and plural (all `v1`).
macro_rules! resource {
    ($ty:ty, $scope:ty, $group:literal, $kind:literal, $plural:literal) => {
        impl Resource for $ty {
            type DynamicType = ();
            type Scope = $scope;
            fn kind(_: &()) -> Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> Cow<'_, str> {
                $group.into()
            }
            fn version(_: &()) -> Cow<'_, str> {
                "v1".into()
            }
            fn plural(_: &()) -> Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

resource!(
    ConfigMapMeta,
    NamespaceResourceScope,
    "",
    "ConfigMap",
    "configmaps"
);
resource!(SecretMeta, NamespaceResourceScope, "", "Secret", "secrets");

/// A CustomResourceDefinition's group, kind and scope.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CrdMeta {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: CrdSpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct CrdSpec {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub names: CrdNames,
    #[serde(default)]
    pub scope: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct CrdNames {
    #[serde(default)]
    pub kind: String,
}

/// A validating or mutating admission policy's parameter kind and policies.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    pub param_kind: Option<ParamKind>,
    pub failure_policy: Option<String>,
    /// Mutating policies only.
    pub reinvocation_policy: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParamKind {
    pub api_version: Option<String>,
    pub kind: Option<String>,
}

/// A policy binding's policy, parameter reference and (validating only) actions.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingSpec {
    #[serde(default)]
    pub policy_name: String,
    pub param_ref: Option<ParamRef>,
    #[serde(default)]
    pub validation_actions: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParamRef {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub parameter_not_found_action: Option<String>,
}

/// A cluster-scoped slim view: metadata and the given spec.
macro_rules! slim {
    ($name:ident, $spec:ty, $group:literal, $kind:literal, $plural:literal) => {
        #[derive(Clone, Debug, Default, Deserialize)]
        pub struct $name {
            #[serde(default)]
            pub metadata: ObjectMeta,
            #[serde(default)]
            pub spec: $spec,
        }

        resource!($name, ClusterResourceScope, $group, $kind, $plural);
    };
}

slim!(
    ValidatingPolicy,
    PolicySpec,
    "admissionregistration.k8s.io",
    "ValidatingAdmissionPolicy",
    "validatingadmissionpolicies"
);
slim!(
    MutatingPolicy,
    PolicySpec,
    "admissionregistration.k8s.io",
    "MutatingAdmissionPolicy",
    "mutatingadmissionpolicies"
);
slim!(
    ValidatingBinding,
    BindingSpec,
    "admissionregistration.k8s.io",
    "ValidatingAdmissionPolicyBinding",
    "validatingadmissionpolicybindings"
);
slim!(
    MutatingBinding,
    BindingSpec,
    "admissionregistration.k8s.io",
    "MutatingAdmissionPolicyBinding",
    "mutatingadmissionpolicybindings"
);

resource!(
    CrdMeta,
    ClusterResourceScope,
    "apiextensions.k8s.io",
    "CustomResourceDefinition",
    "customresourcedefinitions"
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The data of either kind is not kept, whatever it holds.
    #[test]
    fn data_is_skipped() {
        let s: SecretMeta = serde_json::from_str(
            r#"{"apiVersion":"v1","kind":"Secret","type":"Opaque","metadata":{"name":"s"},"data":{"k":"c2VjcmV0"},"stringData":{"x":"y"}}"#,
        )
        .unwrap();
        assert_eq!(s.type_.as_deref(), Some("Opaque"));
        assert!(!format!("{s:?}").contains("c2VjcmV0"));
        let c: ConfigMapMeta = serde_json::from_str(
            r#"{"kind":"ConfigMap","metadata":{"name":"c"},"data":{"k":"v"},"binaryData":{"b":"AA=="}}"#,
        )
        .unwrap();
        assert_eq!(c.metadata.name.as_deref(), Some("c"));
        assert_eq!(
            <SecretMeta as Resource>::url_path(&(), Some("ns")),
            "/api/v1/namespaces/ns/secrets"
        );
        assert_eq!(
            <MutatingPolicy as Resource>::url_path(&(), None),
            "/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicies"
        );
        assert_eq!(
            <CrdMeta as Resource>::url_path(&(), None),
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        );
    }
}
