//! Slim views of the objects whose payload kube-state never reports (a ConfigMap's and a
//! Secret's data): deserialized with their metadata (and a Secret's type) only, so the data
//! is skipped while reading, never held, and cannot reach a family by mistake.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::NamespaceResourceScope;
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

macro_rules! core_v1 {
    ($ty:ty, $kind:literal, $plural:literal) => {
        impl Resource for $ty {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;
            fn kind(_: &()) -> Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> Cow<'_, str> {
                "".into()
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

core_v1!(ConfigMapMeta, "ConfigMap", "configmaps");
core_v1!(SecretMeta, "Secret", "secrets");

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
    }
}
