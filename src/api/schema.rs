//! Type navigation and list metadata of the built-in kinds (interim: no metadata).

/// A position in a kind's type tree.
#[derive(Clone, Copy, Debug)]
pub struct TypeRef(&'static str);

/// How a list merges.
#[derive(Clone, Debug, Default)]
pub struct ListMeta {
    /// SMP merge key.
    pub patch_merge_key: Option<&'static str>,
    /// SMP strategy.
    pub patch_strategy: Option<&'static str>,
    /// SSA list type.
    pub list_type: Option<&'static str>,
    /// SSA map keys.
    pub list_map_keys: &'static [&'static str],
}

impl TypeRef {
    /// Root type of a kind.
    pub fn for_kind(_group: &str, _version: &str, _kind: &str) -> Option<TypeRef> {
        None
    }
    /// Field type.
    pub fn field(self, _name: &str) -> Option<TypeRef> {
        None
    }
    /// Element type.
    pub fn elem(self) -> Option<TypeRef> {
        None
    }
    /// List metadata.
    pub fn list_meta(self, _name: &str) -> ListMeta {
        ListMeta::default()
    }
    /// Definition name.
    pub fn definition(self) -> &'static str {
        self.0
    }
}
