//! A manifest's outline — its environments and its stacks with their dependencies, in order —
//! read without validating it, for what needs names and nothing else (Tab completion). Every
//! other key is skipped by the YAML reader without being built, so this costs a fraction of
//! [`super::load`]; a manifest it cannot read gives `None` (completion then offers nothing, and
//! the command itself says what is wrong).

use std::fmt;
use std::path::Path;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// What Tab completion needs of a manifest.
#[derive(Debug, Default, Deserialize)]
pub struct Outline {
    #[serde(default)]
    pub environments: Vec<String>,
    /// In the manifest's order.
    #[serde(default, deserialize_with = "in_order")]
    pub stacks: Vec<OutlineStack>,
}

#[derive(Debug, Default, Deserialize)]
pub struct OutlineStack {
    #[serde(skip)]
    pub name: String,
    #[serde(default)]
    pub dependencies: Vec<String>,
}

/// The outline of deployment `id` under `root`; `None` when it cannot be read.
pub fn outline(root: &Path, id: &str) -> Option<Outline> {
    super::validate::check_folder_name(id).ok()?;
    let text = std::fs::read_to_string(super::manifest_path(root, id)).ok()?;
    serde_saphyr::from_str(&text).ok()
}

/// `stacks:` as a list in the manifest's order (a stack may be written with no value: `a:`).
fn in_order<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<OutlineStack>, D::Error> {
    struct Ordered;
    impl<'de> Visitor<'de> for Ordered {
        type Value = Vec<OutlineStack>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of stacks")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut stacks = Vec::new();
            while let Some((name, stack)) = map.next_entry::<String, Option<OutlineStack>>()? {
                stacks.push(OutlineStack {
                    name,
                    ..stack.unwrap_or_default()
                });
            }
            Ok(stacks)
        }
    }
    d.deserialize_map(Ordered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_order_and_nothing_else_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("cloud/deploy/D");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("deployment.yaml"),
            "environments: [dev, prod]\nstacks:\n  zeta: { executor: nope, whatever: [1, 2] }\n  alpha:\n    dependencies: [zeta]\n  empty:\n",
        )
        .unwrap();
        let outline = outline(dir.path(), "D").unwrap();
        assert_eq!(outline.environments, ["dev", "prod"]);
        let stacks: Vec<(&str, &[String])> = outline
            .stacks
            .iter()
            .map(|s| (s.name.as_str(), s.dependencies.as_slice()))
            .collect();
        assert_eq!(
            stacks,
            [
                ("zeta", &[][..]),
                ("alpha", &["zeta".to_owned()][..]),
                ("empty", &[][..])
            ]
        );
        assert!(super::outline(dir.path(), "../D").is_none());
        assert!(super::outline(dir.path(), "missing").is_none());
    }
}
