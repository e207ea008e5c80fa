//! A Pod as discovery reads it: the fields its labels and joins use, nothing else. A pod's full
//! object (volumes, environment, resources, tolerations, probes, managed fields) is several KB
//! deserialized, and discovery holds every pod of the cluster; these types keep the names and
//! shapes of `k8s_openapi`'s so the role builders read them the same way.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use kube::core::NamespaceResourceScope;
use serde::{Deserialize, Deserializer};

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Pod {
    #[serde(default, deserialize_with = "read_meta")]
    pub metadata: ObjectMeta,
    pub spec: Option<PodSpec>,
    pub status: Option<PodStatus>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    pub node_name: Option<String>,
    #[serde(default)]
    pub containers: Vec<Container>,
    pub init_containers: Option<Vec<Container>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Container {
    #[serde(default)]
    pub name: String,
    pub image: Option<String>,
    pub ports: Option<Vec<ContainerPort>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    #[serde(default)]
    pub container_port: i32,
    pub name: Option<String>,
    pub protocol: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(rename = "podIPs")]
    pub pod_ips: Option<Vec<PodIp>>,
    pub phase: Option<String>,
    #[serde(rename = "hostIP")]
    pub host_ip: Option<String>,
    pub conditions: Option<Vec<PodCondition>>,
    pub container_statuses: Option<Vec<ContainerStatus>>,
    pub init_container_statuses: Option<Vec<ContainerStatus>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PodIp {
    #[serde(default)]
    pub ip: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PodCondition {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub status: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ContainerStatus {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "containerID")]
    pub container_id: Option<String>,
}

/// The metadata discovery reads (and the watcher's resourceVersion); the rest, managed fields
/// above all, is skipped while parsing rather than built and dropped: a list of ten thousand
/// pods is parsed at once.
fn read_meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase", default)]
    struct Meta {
        name: Option<String>,
        namespace: Option<String>,
        uid: Option<String>,
        resource_version: Option<String>,
        labels: Option<BTreeMap<String, String>>,
        annotations: Option<BTreeMap<String, String>>,
        owner_references: Option<Vec<OwnerReference>>,
    }
    let m = Meta::deserialize(d)?;
    Ok(ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resource_version: m.resource_version,
        labels: m.labels,
        annotations: m.annotations,
        owner_references: m.owner_references,
        ..Default::default()
    })
}

impl Resource for Pod {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;
    fn kind(_: &()) -> Cow<'_, str> {
        "Pod".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// What identifies a ReplicaSet or a Job and leads to its controller, nothing more: there are
/// about ten old ReplicaSets per Deployment, and Jobs applied with kubectl carry their whole
/// manifest in an annotation.
fn read_owner_meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase", default)]
    struct Meta {
        name: Option<String>,
        namespace: Option<String>,
        uid: Option<String>,
        resource_version: Option<String>,
        owner_references: Option<Vec<OwnerReference>>,
    }
    let m = Meta::deserialize(d)?;
    Ok(ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resource_version: m.resource_version,
        owner_references: m.owner_references,
        ..Default::default()
    })
}

/// A ReplicaSet or a Job as `attach_metadata` `deployment` and `cronjob` read them: their
/// identity and owner references alone (which lead from a pod's controller to the one above).
macro_rules! metadata_only {
    ($name:ident, $kind:literal, $group:literal, $version:literal, $plural:literal) => {
        #[derive(Clone, Debug, Default, Deserialize)]
        pub struct $name {
            #[serde(default, deserialize_with = "read_owner_meta")]
            pub metadata: ObjectMeta,
        }

        impl Resource for $name {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;
            fn kind(_: &()) -> Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> Cow<'_, str> {
                $group.into()
            }
            fn version(_: &()) -> Cow<'_, str> {
                $version.into()
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

metadata_only!(ReplicaSet, "ReplicaSet", "apps", "v1", "replicasets");
metadata_only!(Job, "Job", "batch", "v1", "jobs");

/// The owner reference marked as the object's controller (apimachinery's `GetControllerOf`).
pub fn controller_of(m: &ObjectMeta) -> Option<&OwnerReference> {
    m.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields read keep their values (the acronym-named ones too), whatever else the
    /// object holds.
    #[test]
    fn a_full_pod_reads_into_the_slim_one() {
        let p: Pod = serde_json::from_str(
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"n","uid":"u",
                    "resourceVersion":"7","labels":{"app":"x"},"annotations":{"k":"v"},
                    "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"r","controller":true}],
                    "managedFields":[{"manager":"m","operation":"Update","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{}}}]},
                "spec":{"nodeName":"n1","volumes":[{"name":"v","emptyDir":{}}],
                        "containers":[{"name":"c","image":"i:1","env":[{"name":"E","value":"x"}],
                                       "ports":[{"containerPort":80,"name":"http","protocol":"TCP"}]}],
                        "initContainers":[{"name":"init","image":"i:0"}]},
                "status":{"phase":"Running","podIP":"10.0.0.1","podIPs":[{"ip":"10.0.0.1"},{"ip":"fd00::1"}],
                          "hostIP":"192.168.0.1","conditions":[{"type":"Ready","status":"True"}],
                          "containerStatuses":[{"name":"c","containerID":"containerd://abc","ready":true}]}}"#,
        )
        .unwrap();
        let m = &p.metadata;
        assert_eq!(m.resource_version.as_deref(), Some("7"));
        assert_eq!(m.labels.as_ref().unwrap()["app"], "x");
        assert_eq!(m.annotations.as_ref().unwrap()["k"], "v");
        assert_eq!(
            m.owner_references.as_ref().unwrap()[0].controller,
            Some(true)
        );
        assert!(m.managed_fields.is_none());
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n1"));
        assert_eq!(
            spec.containers[0].ports.as_ref().unwrap()[0].container_port,
            80
        );
        assert_eq!(spec.init_containers.as_ref().unwrap()[0].name, "init");
        let st = p.status.as_ref().unwrap();
        assert_eq!(st.pod_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(st.pod_ips.as_ref().unwrap()[1].ip, "fd00::1");
        assert_eq!(st.host_ip.as_deref(), Some("192.168.0.1"));
        assert_eq!(st.conditions.as_ref().unwrap()[0].type_, "Ready");
        assert_eq!(
            st.container_statuses.as_ref().unwrap()[0]
                .container_id
                .as_deref(),
            Some("containerd://abc")
        );
    }
}
