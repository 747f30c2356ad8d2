//! NetworkPolicy (networking.k8s.io/v1), enforced where minke owns the data path:
//! every new connection in the pod network is judged once, after Service
//! translation, by its source pod, destination endpoint, port and protocol.
//!
//! - [`rules`]: the semantics, as pure functions — policies compiled from their
//!   objects; pod, namespace (and both combined) and ipBlock peers; ports by
//!   number, range (`endPort`), name and protocol; `policyTypes` defaulted as the
//!   API server does (Ingress always, Egress when egress rules are present).
//! - [`table`]: the policies in force and read access to the pods and namespaces
//!   they select, kept by watches ([`run`]); [`Network::policy_check`] is the hook
//!   the TCP connect path awaits, [`Network::policy_allows`] the verdict itself
//!   (for datagrams, which a policy drops silently).
//!
//! Choices where Kubernetes leaves room:
//! - Connections from the node (NodePorts and LoadBalancer ports, port-forward,
//!   probes, the Ingress proxy, which runs on the node as a host-network ingress
//!   controller would) are always allowed, as Kubernetes allows traffic from the
//!   node to its pods. Connections to an address that is no pod (the outside, or
//!   a virtual address such as the kube-dns ClusterIP) face only the source's
//!   egress rules, matched by ipBlock.
//! - A refused connection fails with a timeout (`ETIMEDOUT`) after half a
//!   second: what a guest sees of a dropped SYN, without the minute of
//!   retransmissions a real one costs.
//! - A connection admitted once is never checked again: replies flow, and a
//!   policy added later does not cut connections already open (as conntrack-based
//!   implementations behave).
//! - Name lookups go to the cluster DNS in-process, not over the network, so an
//!   egress policy never breaks DNS.
//!
//! [`Network::policy_check`]: crate::net::Network::policy_check
//! [`Network::policy_allows`]: crate::net::Network::policy_allows

pub mod rules;
pub mod table;

pub use rules::Protocol;
pub use table::{Table, run};
