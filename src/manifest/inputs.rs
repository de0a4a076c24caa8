//! A stack's `inputs:` and `timeout:`, keys every executor's stacks may have.
//!
//! ```yaml
//! app:
//!   dependencies: [network, db]
//!   timeout: 30m
//!   inputs:
//!     vpcId: "${network.vpcId}"                 # a dependency's output (its JSON type kept)
//!     url: "postgres://${db.host}:${db.port}"   # several, in a string
//!     token: { value: "${env:API_TOKEN}", secret: true }
//!     region: us-east-1                         # a literal
//! ```
//!
//! References are checked at validation (a referenced stack must be a dependency, an
//! environment variable must be set); values are resolved when the stack starts, from its
//! dependencies' outputs.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::{list, Loc, ManifestResult};
use super::reference::{self, Piece};
use super::yaml::Value;

/// One input of a stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: String,
    pub template: Template,
    /// Never shown: not in logs, events or the journal.
    pub secret: bool,
    /// Where its value is written.
    pub at: Loc,
}

/// An input's value as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    /// A literal that is not a string (number, list, …).
    Literal(serde_json::Value),
    /// A string with `${stack.output}` and `${env:VAR}` parts.
    Text(Vec<Part>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Output { stack: String, key: String },
    Env(String),
}

/// An input's resolved value.
#[derive(Debug, Clone, PartialEq)]
pub struct InputValue {
    pub value: serde_json::Value,
    pub secret: bool,
}

/// Resolved inputs, by name.
pub type Inputs = BTreeMap<String, InputValue>;

/// Why an input could not be resolved when its stack started.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingInput {
    pub message: String,
    pub details: String,
}

impl Input {
    /// The stacks whose outputs it reads.
    pub fn stacks(&self) -> impl Iterator<Item = &str> {
        let parts: &[Part] = match &self.template {
            Template::Text(parts) => parts,
            Template::Literal(_) => &[],
        };
        parts.iter().filter_map(|p| match p {
            Part::Output { stack, .. } => Some(stack.as_str()),
            _ => None,
        })
    }

    /// The outputs it reads, as (stack, key).
    pub fn outputs(&self) -> impl Iterator<Item = (&str, &str)> {
        let parts: &[Part] = match &self.template {
            Template::Text(parts) => parts,
            Template::Literal(_) => &[],
        };
        parts.iter().filter_map(|p| match p {
            Part::Output { stack, key } => Some((stack.as_str(), key.as_str())),
            _ => None,
        })
    }

    /// The environment variables it reads.
    pub fn env_vars(&self) -> impl Iterator<Item = &str> {
        let parts: &[Part] = match &self.template {
            Template::Text(parts) => parts,
            Template::Literal(_) => &[],
        };
        parts.iter().filter_map(|p| match p {
            Part::Env(var) => Some(var.as_str()),
            _ => None,
        })
    }

    /// The value, from the outputs of the stack's dependencies (by stack name) and the
    /// environment. `secret_outputs` names outputs (`stack.key`) that are secret: an input
    /// that reads one is secret too.
    pub fn resolve(
        &self,
        stack: &str,
        outputs: &BTreeMap<String, crate::event::Outputs>,
        secret_outputs: &dyn Fn(&str, &str) -> bool,
    ) -> Result<InputValue, MissingInput> {
        let parts = match &self.template {
            Template::Literal(v) => {
                return Ok(InputValue {
                    value: v.clone(),
                    secret: self.secret,
                })
            }
            Template::Text(parts) => parts,
        };
        let mut secret = self.secret;
        let mut values = Vec::with_capacity(parts.len());
        for part in parts {
            values.push(match part {
                Part::Text(t) => serde_json::Value::String(t.clone()),
                Part::Env(var) => match std::env::var(var) {
                    Ok(v) => serde_json::Value::String(v),
                    Err(_) => {
                        return Err(MissingInput {
                            message: format!(
                                "input `{}` of stack `{stack}` reads ${{env:{var}}}, which is not set",
                                self.name
                            ),
                            details: format!("set {var} in the environment of `cloud`"),
                        })
                    }
                },
                Part::Output { stack: from, key } => {
                    let available = outputs.get(from);
                    match available.and_then(|o| o.get(key)) {
                        Some(v) => {
                            secret |= secret_outputs(from, key);
                            v.clone()
                        }
                        None => {
                            let names: Vec<&str> = available
                                .map(|o| o.keys().map(String::as_str).collect())
                                .unwrap_or_default();
                            return Err(MissingInput {
                                message: format!(
                                    "input `{}` of stack `{stack}`: stack `{from}` has no output `{key}`",
                                    self.name
                                ),
                                details: if names.is_empty() {
                                    format!("`{from}` has no outputs")
                                } else {
                                    format!("outputs of `{from}`: {}", list(&names))
                                },
                            });
                        }
                    }
                }
            });
        }
        // One reference alone keeps its type (a number stays a number).
        let value = match (parts.as_slice(), values.len()) {
            ([Part::Output { .. } | Part::Env(_)], 1) => values.pop().unwrap_or_default(),
            _ => serde_json::Value::String(
                values
                    .iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
            ),
        };
        Ok(InputValue { value, secret })
    }
}

/// `inputs:` of stack `stack`, whose dependencies are `dependencies`.
pub(super) fn parse_inputs(
    stack: &str,
    n: Value,
    dependencies: &[String],
) -> ManifestResult<Vec<Input>> {
    let example = "inputs: { vpcId: \"${network.vpcId}\" }";
    if n.is_null() {
        return Ok(Vec::new());
    }
    let mut inputs = Vec::new();
    for (name, key_at, v) in n.entries(&format!("`inputs` of stack `{stack}`"), example)? {
        if !valid_input_name(&name) {
            return Err(n.doc().err(
                key_at,
                format!(
                    "invalid input name `{}` in stack `{stack}`",
                    name.escape_debug()
                ),
                "use letters, digits and `_`, starting with a letter or `_` (it becomes an \
                 environment variable or a variable name), e.g. `vpc_id` or `vpcId`",
            ));
        }
        let (value, secret) = if v.is_map() {
            let mut value = None;
            let mut secret = false;
            for (k, k_at, kv) in v.entries(
                &format!("input `{name}`"),
                "token: { value: \"${env:TOKEN}\", secret: true }",
            )? {
                match k.as_str() {
                    "value" => value = Some(kv),
                    "secret" => {
                        secret = kv.boolean().ok_or_else(|| {
                            kv.wrong_type("`secret`", "true or false", "secret: true")
                        })?
                    }
                    _ => {
                        return Err(v.doc().unknown_key(
                            &k,
                            k_at,
                            &format!("input `{name}`"),
                            &["value", "secret"],
                        ))
                    }
                }
            }
            let value = value.ok_or_else(|| {
                v.err(
                    format!("input `{name}` of stack `{stack}` has no `value`"),
                    "write it like `token: { value: \"${env:TOKEN}\", secret: true }`",
                )
            })?;
            (value, secret)
        } else {
            (v, false)
        };
        let template = template(&name, value)?;
        let input = Input {
            name,
            template,
            secret,
            at: value.at(),
        };
        let dependencies_list: Vec<&str> = dependencies.iter().map(String::as_str).collect();
        for from in input.stacks() {
            if from == stack {
                return Err(value.err(
                    format!(
                        "input `{}` of stack `{stack}` reads `{stack}`'s own output: a stack's inputs come from its dependencies, before it runs",
                        input.name
                    ),
                    format!(
                        "give the value directly (`{}: <value>`), or read it from one of `{stack}`'s dependencies",
                        input.name
                    ),
                ));
            }
            if !dependencies.iter().any(|d| d == from) {
                return Err(value.err(
                    format!(
                        "input `{}` of stack `{stack}` reads an output of `{from}`, which is not one of its dependencies",
                        input.name
                    ),
                    if dependencies.is_empty() {
                        format!("add `{from}` to the `dependencies` of `{stack}`")
                    } else {
                        format!(
                            "add `{from}` to the `dependencies` of `{stack}`, or read one of them: {}",
                            list(&dependencies_list)
                        )
                    },
                ));
            }
        }
        inputs.push(input);
    }
    Ok(inputs)
}

fn valid_input_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128
}

/// Splits a value into literal text and `${…}` references.
fn template(name: &str, v: Value) -> ManifestResult<Template> {
    let Some(text) = v.scalar_text().filter(|_| v.is_string()) else {
        return Ok(Template::Literal(v.json()?));
    };
    let help = "references are `${stack.output}` (an output of a dependency) or `${env:VAR}`; \
                write `$${` for a literal `${`";
    let pieces = reference::split(&text).map_err(|_| {
        v.err(
            format!("input `{name}` has a `${{` without its closing `}}`"),
            help,
        )
    })?;
    let mut parts = Vec::new();
    for piece in pieces {
        parts.push(match piece {
            Piece::Text(text) => Part::Text(text),
            Piece::Reference(reference) => match reference.strip_prefix("env:") {
                Some(var) => {
                    if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        return Err(v.err(
                            format!(
                                "input `{name}` reads an invalid environment variable name `{var}`"
                            ),
                            help,
                        ));
                    }
                    Part::Env(var.to_owned())
                }
                None => match reference.split_once('.') {
                    Some((stack, key)) if !stack.is_empty() && !key.is_empty() => Part::Output {
                        stack: stack.to_owned(),
                        key: key.to_owned(),
                    },
                    _ => {
                        return Err(v.err(
                            format!("input `{name}` has an invalid reference `${{{reference}}}`"),
                            help,
                        ))
                    }
                },
            },
        });
    }
    if parts.is_empty() {
        parts.push(Part::Text(String::new()));
    }
    Ok(Template::Text(parts))
}

/// `timeout:` as `90s`, `30m`, `1h30m` or a number of seconds; at most a week.
pub(super) fn parse_timeout(v: Value) -> ManifestResult<Duration> {
    let help = "write a duration like `90s`, `30m` or `1h30m` (at most a week)";
    let seconds = match v.number() {
        Some(n) => Some(n),
        None => v.scalar_text().and_then(|t| duration_seconds(&t)),
    };
    match seconds {
        Some(s) if s.is_finite() && s > 0.0 && s <= 7.0 * 86_400.0 => {
            Ok(Duration::from_secs_f64(s))
        }
        _ => Err(v.err(
            format!(
                "`timeout` must be a duration from 1s to a week, found `{}`",
                v.scalar_text().unwrap_or_else(|| v.kind().to_owned())
            ),
            help,
        )),
    }
}

/// `1h30m` → 5400.
pub(super) fn duration_seconds(text: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut number = String::new();
    let mut any = false;
    for c in text.trim().chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1.0,
            'm' => 60.0,
            'h' => 3600.0,
            'd' => 86_400.0,
            _ => return None,
        };
        total += number.parse::<f64>().ok()? * unit;
        number.clear();
        any = true;
    }
    if !number.is_empty() {
        return None;
    }
    any.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_seconds("90s"), Some(90.0));
        assert_eq!(duration_seconds("1h30m"), Some(5400.0));
        assert_eq!(duration_seconds("30"), None);
        assert_eq!(duration_seconds("5x"), None);
    }
}
