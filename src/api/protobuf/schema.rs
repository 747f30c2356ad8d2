//! Shapes of the generated message table and lookups into it.

use super::messages::{GROUPS, MESSAGES};

/// One protobuf message: its full proto name and its fields in Go struct order.
#[derive(Debug)]
pub(super) struct Message {
    pub name: &'static str,
    pub fields: &'static [Field],
}

/// One field: proto number, JSON name, what its values are and how Go prints it.
#[derive(Debug)]
pub(super) struct Field {
    pub tag: u32,
    /// Empty for [`Card::Inline`] fields, whose members are JSON siblings of the parent's.
    pub json: &'static str,
    pub ty: Ty,
    pub card: Card,
    pub go: Go,
}

/// What one value of a field is, in proto and in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ty {
    Str,
    Bool,
    Int32,
    Int64,
    /// Base64 (standard alphabet, padded) in JSON, as Go prints `[]byte`.
    Bytes,
    /// An object, by full proto name.
    Msg(&'static str),
    /// `metav1.Time`: RFC 3339, whole seconds, or `null` when zero.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with 6 fractional digits, or `null` when zero.
    MicroTime,
    /// `metav1.Duration`: Go `time.Duration` string. No k8s.io/api field of v0.33 uses it,
    /// but the generator maps it, so the table may name it after a regeneration.
    #[allow(dead_code)]
    Duration,
    /// `resource.Quantity`: its canonical string.
    Quantity,
    /// `intstr.IntOrString`: a number or a string.
    IntOrString,
    /// `runtime.RawExtension`: the embedded JSON (or embedded protobuf object).
    RawExtension,
    /// `metav1.FieldsV1`: the embedded JSON.
    FieldsV1,
    /// A named Go `[]string` (`ExtraValue`, `Verbs`), wrapped in a message with `items = 1`.
    StringList,
}

/// How many values a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Card {
    One,
    Repeated,
    /// `map<string, ty>`, sent as repeated entries {key = 1, value = 2}.
    Map,
    /// A Go embedded struct with `json:",inline"`: its fields join the parent object.
    Inline,
}

/// What Go's encoding/json does with the field, which the wire alone cannot tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Go {
    /// Non-pointer value without omitempty (or any struct): always printed, zero when unset.
    Value,
    /// Non-pointer scalar, slice or map with omitempty: left out when zero or empty.
    OmitEmpty,
    /// Pointer with omitempty: printed whenever set, even to a zero value (`replicas: 0`).
    Pointer,
    /// Pointer, slice or map without omitempty: `null` when unset.
    Nullable,
}

/// Table rows stay one line each.
pub(super) const fn f(tag: u32, json: &'static str, ty: Ty, card: Card, go: Go) -> Field {
    Field {
        tag,
        json,
        ty,
        card,
        go,
    }
}

/// The message with this full proto name.
pub(super) fn message(name: &str) -> Option<&'static Message> {
    MESSAGES
        .binary_search_by(|m| m.name.cmp(name))
        .ok()
        .and_then(|i| MESSAGES.get(i))
}

/// The message a top-level object of this apiVersion and kind is encoded as. Kinds
/// from meta/v1 (DeleteOptions, Status, …) are registered in every group version.
pub(super) fn kind(api_version: &str, kind: &str) -> Option<&'static Message> {
    let package = GROUPS.iter().find(|(gv, _)| *gv == api_version)?.1;
    message(&format!("{package}.{kind}"))
        .or_else(|| message(&format!("k8s.io.apimachinery.pkg.apis.meta.v1.{kind}")))
}

impl Message {
    pub(super) fn field(&self, tag: u32) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.tag == tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_sorted_so_binary_search_finds_them() {
        assert!(MESSAGES.windows(2).all(|w| w[0].name < w[1].name));
    }

    #[test]
    fn every_referenced_message_is_in_the_table() {
        for m in MESSAGES {
            for f in m.fields {
                if let Ty::Msg(name) = f.ty {
                    assert!(
                        message(name).is_some(),
                        "{}.{} refers to {name}",
                        m.name,
                        f.tag
                    );
                }
            }
        }
    }

    #[test]
    fn inline_fields_hold_messages_and_others_have_json_names() {
        for m in MESSAGES {
            for f in m.fields {
                assert_eq!(
                    f.card == Card::Inline,
                    f.json.is_empty(),
                    "{}.{}",
                    m.name,
                    f.tag
                );
                if f.card == Card::Inline {
                    assert!(matches!(f.ty, Ty::Msg(_)), "{}.{}", m.name, f.tag);
                }
            }
        }
    }

    #[test]
    fn every_kind_kubectl_and_controllers_send_has_a_message() {
        let kinds: &[(&str, &[&str])] = &[
            (
                "v1",
                &[
                    "Namespace",
                    "ConfigMap",
                    "Secret",
                    "Service",
                    "ServiceAccount",
                    "Pod",
                    "PodTemplate",
                    "ReplicationController",
                    "ResourceQuota",
                    "LimitRange",
                    "Endpoints",
                    "Event",
                    "Node",
                    "PersistentVolume",
                    "PersistentVolumeClaim",
                    "Binding",
                    "DeleteOptions",
                    "Status",
                ],
            ),
            (
                "apps/v1",
                &[
                    "Deployment",
                    "ReplicaSet",
                    "StatefulSet",
                    "DaemonSet",
                    "ControllerRevision",
                ],
            ),
            ("batch/v1", &["Job", "CronJob"]),
            ("autoscaling/v1", &["HorizontalPodAutoscaler", "Scale"]),
            ("autoscaling/v2", &["HorizontalPodAutoscaler"]),
            (
                "networking.k8s.io/v1",
                &["Ingress", "IngressClass", "NetworkPolicy"],
            ),
            ("policy/v1", &["PodDisruptionBudget", "Eviction"]),
            (
                "rbac.authorization.k8s.io/v1",
                &["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"],
            ),
            ("scheduling.k8s.io/v1", &["PriorityClass"]),
            ("storage.k8s.io/v1", &["StorageClass"]),
            ("coordination.k8s.io/v1", &["Lease"]),
            ("discovery.k8s.io/v1", &["EndpointSlice"]),
            ("events.k8s.io/v1", &["Event"]),
            (
                "authorization.k8s.io/v1",
                &[
                    "SelfSubjectAccessReview",
                    "SelfSubjectRulesReview",
                    "SubjectAccessReview",
                ],
            ),
            (
                "authentication.k8s.io/v1",
                &["TokenRequest", "TokenReview", "SelfSubjectReview"],
            ),
            ("certificates.k8s.io/v1", &["CertificateSigningRequest"]),
        ];
        for (gv, names) in kinds {
            for k in *names {
                assert!(kind(gv, k).is_some(), "{gv} {k}");
            }
        }
    }

    #[test]
    fn kinds_resolve_through_their_group_version_and_fall_back_to_meta() {
        let name = |gv, k| kind(gv, k).map(|m| m.name);
        assert_eq!(
            name("v1", "Namespace"),
            Some("k8s.io.api.core.v1.Namespace")
        );
        assert_eq!(
            name("apps/v1", "Deployment"),
            Some("k8s.io.api.apps.v1.Deployment")
        );
        assert_eq!(
            name("rbac.authorization.k8s.io/v1", "ClusterRole"),
            Some("k8s.io.api.rbac.v1.ClusterRole")
        );
        assert_eq!(
            name("policy/v1", "DeleteOptions"),
            Some("k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions")
        );
        assert_eq!(name("apps/v1", "Namespace"), None);
        assert_eq!(name("example.com/v1", "Widget"), None);
    }
}
