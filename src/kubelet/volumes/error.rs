//! Why a volume cannot be set up or mounted, worded as the kubelet words it.

/// Why a pod's volumes cannot be set up or a container's mounts made. Setting up
/// keeps the pod in ContainerCreating (retried, with a `FailedMount` event); a
/// mount error is the container's `CreateContainerConfigError`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A volume could not be set up (the kubelet's `FailedMount` wording).
    #[error("MountVolume.SetUp failed for volume \"{volume}\" : {cause}")]
    SetUp {
        /// The volume.
        volume: String,
        /// Why.
        cause: Cause,
    },
    /// A `persistentVolumeClaim` volume's claim is missing, unbound or its PV unusable.
    #[error(
        "Unable to attach or mount volumes: unmounted volumes=[{volume}], unattached volumes=[{volume}]: error processing PVC {namespace}/{claim}: {reason}"
    )]
    Claim {
        /// The volume.
        volume: String,
        /// The pod's namespace.
        namespace: String,
        /// The claim's name.
        claim: String,
        /// Why, as the kubelet's volume populator says it.
        reason: String,
    },
    /// A mount names a volume the pod does not have.
    #[error("volumeMount \"{0}\" names no volume of the pod")]
    UnknownVolume(String),
    /// A `subPath`/`subPathExpr` cannot be used (the kubelet's `makeMounts` wording).
    #[error("{0}")]
    SubPath(String),
}

/// Why one volume could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// A referenced ConfigMap or Secret does not exist.
    #[error("{kind} \"{name}\" not found")]
    NotFound {
        /// `configmap` or `secret`.
        kind: &'static str,
        /// The object's name.
        name: String,
    },
    /// `items` names a key the ConfigMap or Secret lacks.
    #[error("{0}")]
    MissingKey(String),
    /// A downward API item cannot be resolved.
    #[error("{0}")]
    Field(String),
    /// A payload path would leave the volume (`..`, absolute).
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// A hostPath outside the allowed root (or none is allowed).
    #[error("{0}")]
    Forbidden(String),
    /// A hostPath `type` check failed.
    #[error("hostPath type check failed: {path} is not a {what}")]
    HostPathType {
        /// The path checked.
        path: String,
        /// `directory`, `file`, `socket file`, …
        what: &'static str,
    },
    /// A volume type this kubelet does not serve.
    #[error("{0} volumes are not supported")]
    Unsupported(String),
    /// Several sources of a projected volume failed.
    #[error("[{}]", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    Aggregate(Vec<Cause>),
    /// The API could not be read.
    #[error("reading the API: {0}")]
    Api(String),
    /// The host filesystem failed.
    #[error("{0}")]
    Io(String),
}

impl Cause {
    pub(super) fn io(e: impl std::fmt::Display) -> Cause {
        Cause::Io(e.to_string())
    }

    /// One cause, or the aggregate of several (as `utilerrors.NewAggregate`).
    pub(super) fn aggregate(mut causes: Vec<Cause>) -> Option<Cause> {
        match causes.len() {
            0 => None,
            1 => causes.pop(),
            _ => Some(Cause::Aggregate(causes)),
        }
    }
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;
