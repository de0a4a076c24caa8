//! What a drift check's saved plan says drifted (`show -json` of it): each resource the refresh
//! found changed outside Terraform (`resource_drift`), and — when the stack's configuration is
//! the one last deployed — each resource the plan would change to bring it back
//! (`resource_changes`): reality no longer matches what was deployed. Attribute values are
//! given as deployed → now, and never for a sensitive attribute.

use serde_json::{Map, Value as Json};

use crate::event::{DriftedAttribute, PlanAction};

/// One drifted resource.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Drifted {
    pub(super) address: String,
    pub(super) type_: String,
    pub(super) action: PlanAction,
    pub(super) attributes: Vec<DriftedAttribute>,
}

/// The drifted resources of a plan shown as JSON. `config_unchanged`: the stack's manifest entry,
/// files and inputs are the ones last deployed, so any change the plan makes is drift too.
pub(super) fn drifted(shown: &Json, config_unchanged: bool) -> Vec<Drifted> {
    let mut out: Vec<Drifted> = Vec::new();
    for r in list(shown, "resource_drift") {
        let Some((address, type_, change)) = parts(r) else {
            continue;
        };
        let action = match actions(change).as_slice() {
            ["delete"] => PlanAction::Delete,
            _ => PlanAction::Update,
        };
        // The refresh's `before` is what was recorded, `after` what is there now.
        let attributes = attributes(change, "before", "after");
        out.push(Drifted {
            address,
            type_,
            action,
            attributes,
        });
    }
    if !config_unchanged {
        return out;
    }
    for r in list(shown, "resource_changes") {
        let Some((address, type_, change)) = parts(r) else {
            continue;
        };
        let action = match actions(change).as_slice() {
            ["update"] => PlanAction::Update,
            ["create"] => PlanAction::Delete,
            ["delete"] => PlanAction::Create,
            ["delete", "create"] | ["create", "delete"] => PlanAction::Replace,
            _ => continue,
        };
        // The plan's `before` is what is there now, `after` what was deployed (the config).
        let attributes = attributes(change, "after", "before");
        match out.iter_mut().find(|d| d.address == address) {
            Some(known) => {
                for a in attributes {
                    if !known.attributes.iter().any(|k| k.name == a.name) {
                        known.attributes.push(a);
                    }
                }
            }
            None => out.push(Drifted {
                address,
                type_,
                // Gone (the plan creates it again) or changed.
                action: match action {
                    PlanAction::Delete => PlanAction::Delete,
                    _ => PlanAction::Update,
                },
                attributes,
            }),
        }
    }
    out
}

fn list<'a>(shown: &'a Json, key: &str) -> impl Iterator<Item = &'a Json> {
    shown
        .get(key)
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
}

fn parts(r: &Json) -> Option<(String, String, &Json)> {
    // Data sources are read, never drift.
    if r.get("mode").and_then(Json::as_str) == Some("data") {
        return None;
    }
    let address = r.get("address")?.as_str()?.to_owned();
    let type_ = r.get("type").and_then(Json::as_str).unwrap_or_default();
    Some((address, type_.to_owned(), r.get("change")?))
}

fn actions(change: &Json) -> Vec<&str> {
    change
        .get("actions")
        .and_then(Json::as_array)
        .map(|a| a.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default()
}

/// The top-level attributes whose values differ between `deployed` and `now` (keys of
/// `change`), each with both values unless it is sensitive on either side.
fn attributes(change: &Json, deployed: &str, now: &str) -> Vec<DriftedAttribute> {
    let empty = Map::new();
    let object = |key: &str| change.get(key).and_then(Json::as_object).unwrap_or(&empty);
    let (was, is) = (object(deployed), object(now));
    let sensitive = |name: &str| {
        [format!("{deployed}_sensitive"), format!("{now}_sensitive")]
            .iter()
            .any(|k| change.get(k).and_then(|s| s.get(name)).is_some_and(marked))
    };
    let unknown = |name: &str| {
        change
            .get("after_unknown")
            .and_then(|s| s.get(name))
            .is_some_and(marked)
    };
    let mut names: Vec<&String> = was.keys().chain(is.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|name| was.get(*name) != is.get(*name) && !unknown(name))
        .map(|name| {
            let hidden = sensitive(name);
            let value = |side: &Map<String, Json>| {
                (!hidden).then(|| side.get(name).cloned().unwrap_or(Json::Null))
            };
            DriftedAttribute {
                name: name.clone(),
                before: value(was),
                after: value(is),
                sensitive: hidden,
            }
        })
        .collect()
}

/// `true`, or a structure holding a `true` somewhere (a sensitive or unknown part of it).
fn marked(v: &Json) -> bool {
    match v {
        Json::Bool(b) => *b,
        Json::Array(a) => a.iter().any(marked),
        Json::Object(o) => o.values().any(marked),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outside_changes_and_the_plans_way_back_are_drift_with_their_attributes() {
        let shown = json!({
            "resource_drift": [{
                "address": "terraform_data.cert", "mode": "managed", "type": "terraform_data",
                "change": {"actions": ["update"],
                    "before": {"input": "a", "id": "1", "token": "s3cret"},
                    "after": {"input": "b", "id": "1", "token": "other"},
                    "before_sensitive": {"token": true}, "after_sensitive": {"token": true}}
            }],
            "resource_changes": [
                {"address": "terraform_data.app", "mode": "managed", "type": "terraform_data",
                 "change": {"actions": ["update"], "before": {"input": "edited"},
                    "after": {"input": "deployed", "output": null},
                    "after_unknown": {"output": true}}},
                {"address": "terraform_data.same", "mode": "managed", "type": "terraform_data",
                 "change": {"actions": ["no-op"], "before": {}, "after": {}}},
                {"address": "data.x.y", "mode": "data", "type": "x",
                 "change": {"actions": ["read"]}}
            ]
        });
        let found = drifted(&shown, true);
        assert_eq!(found.len(), 2, "{found:#?}");
        let cert = &found[0];
        assert_eq!(cert.address, "terraform_data.cert");
        assert_eq!(cert.attributes.len(), 2);
        assert_eq!(cert.attributes[0].name, "input");
        assert_eq!(cert.attributes[0].before, Some(json!("a")));
        assert_eq!(cert.attributes[0].after, Some(json!("b")));
        let token = &cert.attributes[1];
        assert!(token.sensitive && token.before.is_none() && token.after.is_none());
        // As deployed → now; an attribute known only after apply is not drift.
        let app = &found[1];
        assert_eq!(app.attributes.len(), 1, "{app:#?}");
        assert_eq!(app.attributes[0].before, Some(json!("deployed")));
        assert_eq!(app.attributes[0].after, Some(json!("edited")));
        // Changed configuration: the plan's changes are pending, not drift.
        assert_eq!(drifted(&shown, false).len(), 1);
    }
}
