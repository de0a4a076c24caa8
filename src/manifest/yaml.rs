//! The manifest's YAML as a small tree of nodes that remember where they were written, and
//! [`Value`], the view of one node that validation and executors read it through: every
//! wrong type or empty value becomes a [`ManifestError`] pointing at it.

use std::collections::HashMap;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::error::{did_you_mean, list, Loc, ManifestError, ManifestResult};

mod scan;

#[derive(Debug)]
pub(super) enum Node {
    Null,
    Bool(bool),
    /// Integers beyond i64 become `Float` (they are no stack count, name or duration).
    Int(i64),
    Float(f64),
    // (Boxed: exact size, and a node of 24 bytes, not 32.)
    Str(Box<str>),
    Seq(Box<[SNode]>),
    Map(Box<[(SNode, SNode)]>),
}

/// A node and where it was written. Kept small (not serde-saphyr's `Spanned`, three times the
/// size): a 10,000-stack manifest holds a million of them.
#[derive(Debug)]
pub(super) struct SNode {
    pub(super) value: Node,
    line: u32,
    column: u32,
    /// Byte offset and length of the text as written, when known.
    span: Span,
}

/// [`SNode::span`]: an `Option<(u32, u32)>` in 8 bytes, not 12 (a million nodes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    start: u32,
    len: u32,
}

impl Span {
    /// No place known.
    const NONE: Span = Span {
        start: u32::MAX,
        len: u32::MAX,
    };

    pub(super) fn get(self) -> Option<(u32, u32)> {
        (self != Span::NONE).then_some((self.start, self.len))
    }
}

impl From<Option<(u32, u32)>> for Span {
    fn from(span: Option<(u32, u32)>) -> Span {
        match span {
            // (A text of 4 GiB is refused before it gets here.)
            Some((start, len)) if (start, len) != (u32::MAX, u32::MAX) => Span { start, len },
            _ => Span::NONE,
        }
    }
}

impl std::fmt::Debug for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

impl<'de> Deserialize<'de> for SNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = Spanned::<Node>::deserialize(d)?;
        let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let span = n.defined.span();
        Ok(SNode {
            line: clamp(n.referenced.line()),
            column: clamp(n.referenced.column()),
            span: (span.byte_offset().zip(span.byte_len()))
                .and_then(|(o, l)| Some((u32::try_from(o).ok()?, u32::try_from(l).ok()?)))
                .into(),
            value: n.value,
        })
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a YAML value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(i64::try_from(v).map_or(Node::Float(v as f64), Node::Int))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
                Ok(i64::try_from(v).map_or(Node::Float(v as f64), Node::Int))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Node, E> {
                Ok(i64::try_from(v).map_or(Node::Float(v as f64), Node::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Float(v))
            }
            fn visit_char<E>(self, v: char) -> Result<Node, E> {
                Ok(Node::Str(v.to_string().into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.into()))
            }
            fn visit_string<E>(self, v: String) -> Result<Node, E> {
                Ok(Node::Str(v.into()))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
                match std::str::from_utf8(v) {
                    Ok(s) => Ok(Node::Str(s.into())),
                    Err(_) => Err(E::custom("binary data is not supported here")),
                }
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element::<SNode>()? {
                    items.push(item);
                }
                Ok(Node::Seq(items.into()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = a.next_key::<SNode>()? {
                    let value = a.next_value::<SNode>()?;
                    entries.push((key, value));
                }
                Ok(Node::Map(entries.into()))
            }
        }
        d.deserialize_any(NodeVisitor)
    }
}

impl SNode {
    pub(super) fn loc(&self) -> Loc {
        Loc {
            line: self.line.into(),
            column: self.column.into(),
        }
    }
}

/// Reads YAML into the node tree: by the scanner of the subset manifests are written in
/// ([`scan`], ~4× quicker than the parser), else straight from the parser's events when the
/// text uses nothing the tree cannot take as is (see [`from_events`]), else through
/// serde-saphyr's deserializer, which says precisely what is wrong. All give the same tree
/// (tests hold them to it).
pub(super) fn read_yaml(text: &str) -> Result<SNode, serde_saphyr::Error> {
    if let Some(root) = scan::scan(text) {
        return Ok(root);
    }
    match from_events(text) {
        Some(root) => Ok(root),
        None => read_yaml_serde(text),
    }
}

/// The deepest nesting read (the deserializer's budget below refuses deeper).
const MAX_DEPTH: usize = 48;

fn serde_options() -> serde_saphyr::Options {
    use serde_saphyr::options::{DuplicateKeyPolicy, NonFiniteFloatPolicy};
    serde_saphyr::options! {
        // Duplicates are reported by the validator, with both places.
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
        with_snippet: false,
        // `no`, `on`, `yes` stay strings (environment and stack names).
        strict_booleans: true,
        reject_unsupported_tags: true,
        non_finite_float_policy: NonFiniteFloatPolicy::PassThrough,
        // Keep the recursion of the node tree shallow enough for any thread's stack, and let
        // big manifests in (10,000 stacks × 10 resources is ~1M nodes, ~3M events).
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            flow_nesting_limit: MAX_DEPTH,
            max_nodes: 20_000_000,
            max_events: 60_000_000,
        },
    }
}

/// The precise path: serde-saphyr's deserializer, with its errors.
fn read_yaml_serde(text: &str) -> Result<SNode, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(text, serde_options())
}

/// serde-saphyr's parser on `text`, set up as [`serde_options`] sets it up.
pub(super) fn parser(text: &str) -> granit_parser::Parser<'_, granit_parser::StrInput<'_>> {
    let options = granit_parser::options! {
        flow_nesting_limit: MAX_DEPTH,
        emit_comments: false,
    };
    granit_parser::Parser::new_from_str_with_options(text, options)
}

/// The fast path: the tree built from the parser's events, five times quicker than through
/// serde (no deserializer state, no `Spanned` wrapper per node). `None` — take the precise path —
/// for anything it does not handle itself: a parse error, tags, anchors and aliases, merge
/// keys (`<<`), several documents, nesting beyond [`MAX_DEPTH`], and plain scalars it cannot
/// type for sure (see [`plain_scalar`]).
fn from_events(text: &str) -> Option<SNode> {
    use granit_parser::{Event, ScalarStyle};
    /// A collection being read: its node (its place) and what it holds so far.
    enum Open {
        Seq(SNode, Vec<SNode>),
        Map(SNode, Vec<(SNode, SNode)>, Option<SNode>),
    }
    let mut open: Vec<Open> = Vec::new();
    let mut root = None;
    let mut documents = 0;
    for item in parser(text) {
        let (event, span) = item.ok()?;
        let at = |value| {
            let start = span.start.byte_offset()?;
            let len = span.end.byte_offset()?.checked_sub(start)?;
            Some(SNode {
                value,
                line: u32::try_from(span.start.line()).ok()?,
                column: u32::try_from(span.start.col() + 1).ok()?,
                span: Some((u32::try_from(start).ok()?, u32::try_from(len).ok()?)).into(),
            })
        };
        let node = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => continue,
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return None;
                }
                continue;
            }
            Event::Scalar(value, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                let value = match style {
                    ScalarStyle::Plain => plain_scalar(&value)?,
                    _ => Node::Str(value.into()),
                };
                at(value)?
            }
            Event::SequenceStart(_, anchor, ref tag) | Event::MappingStart(_, anchor, ref tag) => {
                if anchor != 0 || tag.is_some() || open.len() >= MAX_DEPTH {
                    return None;
                }
                let node = at(Node::Null)?;
                open.push(match event {
                    Event::SequenceStart(..) => Open::Seq(node, Vec::new()),
                    _ => Open::Map(node, Vec::new(), None),
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match open.pop()? {
                Open::Seq(mut node, items) => {
                    node.value = Node::Seq(items.into());
                    node
                }
                Open::Map(mut node, entries, None) => {
                    node.value = Node::Map(entries.into());
                    node
                }
                Open::Map(_, _, Some(_)) => return None,
            },
            // Aliases, anchors and comments (not asked for).
            _ => return None,
        };
        match open.last_mut() {
            None if root.is_none() => root = Some(node),
            None => return None,
            Some(Open::Seq(_, items)) => items.push(node),
            Some(Open::Map(_, entries, key)) => match key.take() {
                Some(key) => entries.push((key, node)),
                None if matches!(&node.value, Node::Str(s) if &**s == "<<") => return None,
                None => *key = Some(node),
            },
        }
    }
    root
}

/// The type of a plain (unquoted) scalar as serde-saphyr reads it with [`serde_options`]: the
/// common spellings here, and the rest that may be a number (`1.5e3`, `0x1f`, `+1`, `30m`)
/// by serde-saphyr itself, on that text alone. `None` for text it could read differently on
/// its own (a `---` or `...`, anything beyond letters, digits, `+-._` and inner spaces).
fn plain_scalar(value: &str) -> Option<Node> {
    match value {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Node::Null),
        "true" | "True" | "TRUE" => return Some(Node::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Node::Bool(false)),
        _ => {}
    }
    let bytes = value.as_bytes();
    // No number starts with anything but a digit, a sign or a dot (`inf` and `nan` are text).
    if !matches!(bytes[0], b'0'..=b'9' | b'+' | b'-' | b'.') {
        return Some(Node::Str(value.into()));
    }
    // Decimal integers without a leading zero (which would make them floats or text).
    if bytes.len() <= 18
        && bytes.iter().all(u8::is_ascii_digit)
        && (bytes[0] != b'0' || bytes.len() == 1)
    {
        return value.parse().ok().map(Node::Int);
    }
    if let Some(float) = decimal_float(value) {
        return Some(Node::Float(float));
    }
    let ordinary = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_' | ' ');
    if !value.chars().all(ordinary)
        || value.starts_with("---")
        || value.starts_with("...")
        || value.ends_with(' ')
    {
        return None;
    }
    match read_yaml_serde(value).ok()?.value {
        Node::Seq(_) | Node::Map(_) => None,
        scalar => Some(scalar),
    }
}

/// An ordinary decimal fraction (`0.5`, `-12.25`: an optional `-`, digits without a leading zero,
/// a dot, digits), read as serde-saphyr reads it (the nearest `f64`) without a parse of its own
/// per scalar. `None` for any other spelling (`.5`, `1.`, `1e3`, `+1.5`, `01.5`, `1_0.5`).
fn decimal_float(value: &str) -> Option<f64> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let (whole, fraction) = digits.split_once('.')?;
    let decimal = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !decimal(whole) || !decimal(fraction) || (whole.len() > 1 && whole.starts_with('0')) {
        return None;
    }
    value.parse().ok()
}

/// The file being read and its text: where errors point, and how scalars were written.
#[derive(Clone, Copy)]
pub struct Doc<'a> {
    pub(super) file: &'a Path,
    pub(super) source: &'a str,
}

impl<'a> Doc<'a> {
    pub fn err(
        &self,
        at: Loc,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> ManifestError {
        ManifestError::new(self.file, at, message, help)
    }

    /// `unknown key `x` in <what>` with the closest allowed key and the list.
    pub fn unknown_key(&self, key: &str, at: Loc, what: &str, allowed: &[&str]) -> ManifestError {
        self.err(
            at,
            format!("unknown key `{}` in {what}", key.escape_debug()),
            format!(
                "{}allowed keys: {}",
                did_you_mean(key, allowed),
                list(allowed)
            ),
        )
    }

    pub(super) fn value(&self, node: &'a SNode) -> Value<'a> {
        Value { node, doc: *self }
    }
}

/// One YAML value, where it was written, and typed readers that explain a wrong value.
#[derive(Clone, Copy)]
pub struct Value<'a> {
    node: &'a SNode,
    doc: Doc<'a>,
}

impl<'a> Value<'a> {
    pub fn at(&self) -> Loc {
        self.node.loc()
    }

    pub fn doc(&self) -> Doc<'a> {
        self.doc
    }

    pub fn is_null(&self) -> bool {
        matches!(self.node.value, Node::Null)
    }

    /// `a string`, `a list`, …: what was written, for messages.
    pub fn kind(&self) -> &'static str {
        match self.node.value {
            Node::Null => "nothing (null)",
            Node::Bool(_) => "a boolean",
            Node::Int(_) | Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }

    /// `<what> must be <expected>, found <kind>` with an example of the right form.
    pub fn wrong_type(&self, what: &str, expected: &str, example: &str) -> ManifestError {
        self.doc.err(
            self.at(),
            format!("{what} must be {expected}, found {}", self.kind()),
            format!("write it like `{example}`"),
        )
    }

    pub fn err(&self, message: impl Into<String>, help: impl Into<String>) -> ManifestError {
        self.doc.err(self.at(), message, help)
    }

    /// The text of a scalar as written (so a stack called `00` or `1e3` keeps its name).
    pub fn scalar_text(&self) -> Option<String> {
        let n = self.node;
        let written = || {
            let (start, len) = n.span.get()?;
            let (start, len) = (start as usize, len as usize);
            let raw = self.doc.source.get(start..start.checked_add(len)?)?.trim();
            (!raw.is_empty() && !raw.contains(['\n', '\r', '#', '*', '&', '!']))
                .then(|| raw.to_owned())
        };
        match &n.value {
            Node::Str(s) => Some(s.to_string()),
            Node::Int(i) => Some(written().unwrap_or_else(|| i.to_string())),
            Node::Float(f) => Some(written().unwrap_or_else(|| f.to_string())),
            Node::Bool(b) => Some(written().unwrap_or_else(|| b.to_string())),
            Node::Null | Node::Seq(_) | Node::Map(_) => None,
        }
    }

    /// A string value (numbers and booleans are taken as written).
    pub fn string(&self, what: &str, example: &str) -> ManifestResult<String> {
        match &self.node.value {
            Node::Seq(_) | Node::Map(_) | Node::Null => {
                Err(self.wrong_type(what, "a string", example))
            }
            _ => Ok(self.scalar_text().unwrap_or_default()),
        }
    }

    pub fn nonempty_string(&self, what: &str, example: &str) -> ManifestResult<String> {
        let s = self.string(what, example)?;
        if s.trim().is_empty() {
            return Err(self.err(
                format!("{what} is empty"),
                format!("write it like `{example}`"),
            ));
        }
        Ok(s)
    }

    /// A number, whole or not.
    pub fn number(&self) -> Option<f64> {
        match self.node.value {
            Node::Int(i) => Some(i as f64),
            Node::Float(f) => Some(f),
            _ => None,
        }
    }

    /// A whole number (integers beyond i64 are not).
    pub fn integer(&self) -> Option<i64> {
        match self.node.value {
            Node::Int(i) => Some(i),
            _ => None,
        }
    }

    pub fn boolean(&self) -> Option<bool> {
        match self.node.value {
            Node::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The items of a list; `null` is an empty list.
    pub fn items(
        &self,
        what: &str,
        expected: &str,
        example: &str,
    ) -> ManifestResult<Vec<Value<'a>>> {
        match &self.node.value {
            Node::Null => Ok(Vec::new()),
            Node::Seq(items) => Ok(items.iter().map(|n| self.doc.value(n)).collect()),
            _ => Err(self.wrong_type(what, expected, example)),
        }
    }

    pub fn is_string(&self) -> bool {
        matches!(self.node.value, Node::Str(_))
    }

    pub fn is_map(&self) -> bool {
        matches!(self.node.value, Node::Map(_))
    }

    pub fn is_list(&self) -> bool {
        matches!(self.node.value, Node::Seq(_))
    }

    /// The entries of a mapping, with plain keys; rejects other key types and duplicates.
    pub fn entries(
        &self,
        what: &str,
        example: &str,
    ) -> ManifestResult<Vec<(String, Loc, Value<'a>)>> {
        let Node::Map(map) = &self.node.value else {
            return Err(self.wrong_type(what, "a mapping", example));
        };
        // A mapping of a few keys is searched for a duplicate faster than hashed (most are).
        let mut seen: HashMap<String, Loc> = HashMap::new();
        let hashed = map.len() > 16;
        let mut out: Vec<(String, Loc, Value<'a>)> = Vec::with_capacity(map.len());
        for (k, v) in map {
            let key_value = self.doc.value(k);
            let Some(key) = key_value.scalar_text() else {
                return Err(key_value.err(
                    format!(
                        "keys of {what} must be plain names, found {}",
                        key_value.kind()
                    ),
                    "use a plain name followed by `:`",
                ));
            };
            let first = match hashed {
                true => seen.get(&key).copied(),
                false => out.iter().find(|(seen, ..)| *seen == key).map(|e| e.1),
            };
            if let Some(first) = first {
                return Err(key_value.err(
                    format!("duplicate key `{}` in {what}", key.escape_debug()),
                    format!(
                        "`{}` is already set at line {}; keep only one of them",
                        key.escape_debug(),
                        first.line
                    ),
                ));
            }
            if hashed {
                seen.insert(key.clone(), k.loc());
            }
            out.push((key, k.loc(), self.doc.value(v)));
        }
        Ok(out)
    }

    /// The key nodes of a mapping with their values, keys not read yet (stack names).
    pub(super) fn raw_entries(&self) -> Option<Vec<(Value<'a>, Value<'a>)>> {
        let Node::Map(map) = &self.node.value else {
            return None;
        };
        Some(
            map.iter()
                .map(|(k, v)| (self.doc.value(k), self.doc.value(v)))
                .collect(),
        )
    }

    /// The value as JSON (outputs, notification settings).
    pub fn json(&self) -> ManifestResult<serde_json::Value> {
        use serde_json::Value as J;
        Ok(match &self.node.value {
            Node::Null => J::Null,
            Node::Bool(b) => J::Bool(*b),
            Node::Int(i) => J::from(*i),
            Node::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .ok_or_else(|| {
                    self.err(
                        "this number is not finite",
                        "write a finite number, or quote it to keep it as text",
                    )
                })?,
            Node::Str(s) => J::String(s.to_string()),
            Node::Seq(items) => J::Array(
                items
                    .iter()
                    .map(|i| self.doc.value(i).json())
                    .collect::<ManifestResult<Vec<_>>>()?,
            ),
            Node::Map(_) => {
                let mut obj = serde_json::Map::new();
                for (k, _, v) in self.entries("this mapping", "key: value")? {
                    obj.insert(k, v.json()?);
                }
                J::Object(obj)
            }
        })
    }
}

/// Keys whose values are secrets wherever they are written (the notification channels'
/// credentials: `email.password`, `slack.webhookUrl`, `pagerduty.routingKey`, a webhook's
/// `secret`).
const SECRET_KEYS: &[&str] = &["password", "webhookUrl", "routingKey", "secret"];

/// `text` with every secret it holds replaced by `*`, character for character, so an error
/// snippet quotes the manifest without its credentials and its lines and columns stay where
/// they were. Masked: the values of [`SECRET_KEYS`], a webhook's `url` (its path is often the
/// token), the `value` of a mapping marked `secret: true` (inputs, Pulumi config) and the
/// password of any `scheme://user:password@host`. When the text is no YAML (the error is a
/// syntax error), every value of those keys and every `value:` is masked, line by line.
pub(super) fn mask_secrets(text: &str) -> String {
    let mut secret = vec![false; text.len()];
    match read_yaml(text) {
        Ok(root) => mark_node(&root, false, text, &mut secret),
        Err(_) => mark_lines(text, &mut secret),
    }
    mark_url_passwords(text, &mut secret);
    text.char_indices()
        .map(|(i, c)| {
            if secret[i] && !c.is_whitespace() {
                '*'
            } else {
                c
            }
        })
        .collect()
}

/// Marks the secrets under `node`; `in_webhooks` when it is (inside) the `webhooks:` list.
fn mark_node(node: &SNode, in_webhooks: bool, text: &str, secret: &mut [bool]) {
    match &node.value {
        Node::Seq(items) => {
            for item in items {
                mark_node(item, in_webhooks, text, secret);
            }
        }
        Node::Map(entries) => {
            fn key(k: &SNode) -> Option<&str> {
                match &k.value {
                    Node::Str(s) => Some(s),
                    _ => None,
                }
            }
            let marked_secret = entries
                .iter()
                .any(|(k, v)| key(k) == Some("secret") && matches!(v.value, Node::Bool(true)));
            for (k, v) in entries {
                let name = key(k).unwrap_or("");
                if SECRET_KEYS.contains(&name)
                    || (in_webhooks && name == "url")
                    || (marked_secret && name == "value")
                {
                    mark_scalars(v, text, secret);
                } else {
                    mark_node(v, in_webhooks || name == "webhooks", text, secret);
                }
            }
        }
        _ => {}
    }
}

/// Marks every string scalar under `node` (booleans, like `secret: true`, are no secret).
fn mark_scalars(node: &SNode, text: &str, secret: &mut [bool]) {
    match &node.value {
        Node::Seq(items) => items.iter().for_each(|i| mark_scalars(i, text, secret)),
        Node::Map(entries) => entries
            .iter()
            .for_each(|(_, v)| mark_scalars(v, text, secret)),
        Node::Null | Node::Bool(_) => {}
        Node::Str(_) | Node::Int(_) | Node::Float(_) => {
            let Some((start, len)) = node.span.get() else {
                return;
            };
            let (start, end) = (
                start as usize,
                (start as usize + len as usize).min(text.len()),
            );
            let Some(written) = text.get(start..end) else {
                return;
            };
            // The quotes stay: they show where the value starts and ends.
            let quoted = written.len() >= 2
                && matches!(written.as_bytes()[0], b'"' | b'\'')
                && written.as_bytes()[written.len() - 1] == written.as_bytes()[0];
            let (start, end) = if quoted {
                (start + 1, end - 1)
            } else {
                (start, end)
            };
            secret[start..end].iter_mut().for_each(|s| *s = true);
        }
    }
}

/// For text that is no YAML: on each line, the value after a secret key (or `value:`, or
/// `url:`), up to the end of its flow item or of the line.
fn mark_lines(text: &str, secret: &mut [bool]) {
    let keys: Vec<&str> = SECRET_KEYS
        .iter()
        .copied()
        .chain(["value", "url"])
        .collect();
    let mut line_start = 0;
    for line in text.split_inclusive(['\n', '\r']) {
        for key in &keys {
            let pattern = format!("{key}:");
            for (at, _) in line.match_indices(&pattern) {
                let starts_key = line[..at]
                    .chars()
                    .next_back()
                    .is_none_or(|c| c.is_whitespace() || matches!(c, '{' | ',' | '-' | '"' | '\''));
                let rest = &line[at + pattern.len()..];
                if !starts_key || !rest.starts_with([' ', '\t']) {
                    continue;
                }
                let value_start = at + pattern.len();
                let value_end = value_start + value_len(rest);
                secret[line_start + value_start..line_start + value_end]
                    .iter_mut()
                    .for_each(|s| *s = true);
            }
        }
        line_start += line.len();
    }
}

/// How far a value written after `key:` reaches on its line: to a `,` or `}` outside quotes,
/// a ` #` comment, or the end of the line.
fn value_len(rest: &str) -> usize {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in rest.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, ',' | '}' | '\n' | '\r') => return i,
            (None, '#') if prev.is_whitespace() => return i,
            _ => {}
        }
        prev = c;
    }
    rest.len()
}

/// Marks the password of every `scheme://user:password@host` in the text.
fn mark_url_passwords(text: &str, secret: &mut [bool]) {
    for (at, _) in text.match_indices("://") {
        let authority_start = at + 3;
        let rest = &text[authority_start..];
        let authority_end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '"' | '\''))
            .unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let Some(userinfo_end) = authority.rfind('@') else {
            continue;
        };
        if let Some(colon) = authority[..userinfo_end].find(':') {
            let from = authority_start + colon + 1;
            let to = authority_start + userinfo_end;
            secret[from..to].iter_mut().for_each(|s| *s = true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whichever path it takes, the tree is the deserializer's: values, lines, columns, spans.
    fn same_tree(text: &str) {
        let show = |r: Result<SNode, serde_saphyr::Error>| match r {
            Ok(tree) => format!("{tree:?}"),
            Err(e) => e.to_string(),
        };
        assert_eq!(
            show(read_yaml(text)),
            show(read_yaml_serde(text)),
            "{text:?}"
        );
    }

    #[test]
    fn the_fast_tree_is_the_deserializers() {
        let manifest = "deploymentId: D1 # comment\nenvironments: [dev, 'prod', \"qa\"]\ndefaults: { executor: simulate }\n\nstacks:\n  s00001:\n    dependencies: [s00000, s00002]\n    resources:\n      - { type: \"aws:s3/bucket:Bucket\", name: r0, seconds: 0 }\n      - type: x\n        seconds: 1.5\n  empty:\n  '00': {}\n";
        assert!(from_events(manifest).is_some());
        same_tree(manifest);
        for scalar in [
            "0",
            "7",
            "007",
            "-1",
            "+1",
            "1.5",
            "-0.5",
            ".5",
            "1e3",
            "1_000",
            "0x1F",
            "0X1F",
            "0o17",
            ".inf",
            "-.inf",
            ".nan",
            "-.nan",
            "1e999",
            "30m",
            "1h 30m",
            "12:30",
            "null",
            "~",
            "Null",
            "true",
            "True",
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "inf",
            "nan",
            "NaN",
            "123456789012345678901234",
            "-123456789012345678901",
            "2e513",
            "1.",
            "+",
            "-",
            ".",
            "a b",
            "x # c",
            "'q'",
            "\"d\\tq\"",
            "|\n  lit\n  eral\n",
            ">\n  fol\n  ded\n",
            "multi\n  line plain",
            "é",
            "",
        ] {
            same_tree(&format!("k: {scalar}\n"));
            same_tree(&format!("- [{scalar}]\n"));
        }
        same_tree("1: one\n2.5: two\ntrue: three\n~: four\n[a, b]: five\n");
        same_tree("a:\n  - - x\n    - y\n  -\n  - {p: q, r: [s, {t: u}]}\n");
        same_tree("\u{feff}a: b\n");
        same_tree("--- \na: b\n...\n");
    }

    #[test]
    fn decimal_fractions_read_as_the_deserializer_reads_them() {
        let mut rng = fastrand::Rng::with_seed(5);
        let mut written: Vec<String> = [
            "0.5",
            "12.25",
            "1.0",
            "-0.0",
            "0.0",
            "-1.5",
            "00.5",
            "01.5",
            "0.10",
            "1.",
            ".5",
            "-.5",
            "+1.5",
            "1e3",
            "1.5e3",
            "1_0.5",
            "1.2.3",
            "-",
            "1.-5",
            "9007199254740993.0",
            "0.1000000000000000055511151231257827",
            "179769313486231570000000000000000000000.0",
        ]
        .map(String::from)
        .to_vec();
        for _ in 0..500 {
            let digits = |rng: &mut fastrand::Rng, n| {
                (0..n).map(|_| rng.char('0'..='9')).collect::<String>()
            };
            let (w, f) = (rng.usize(1..20), rng.usize(1..25));
            written.push(format!(
                "{}{}.{}",
                if rng.bool() { "-" } else { "" },
                digits(&mut rng, w),
                digits(&mut rng, f)
            ));
        }
        for text in written {
            let fast = decimal_float(&text);
            let serde = read_yaml_serde(&text).ok().map(|n| n.value);
            match (fast, serde) {
                (Some(f), Some(Node::Float(s))) => assert_eq!(f.to_bits(), s.to_bits(), "{text}"),
                (Some(f), other) => panic!("{text}: fast {f:?}, deserializer {other:?}"),
                (None, _) => {}
            }
            same_tree(&format!("k: {text}\n"));
        }
    }

    #[test]
    fn what_the_fast_path_leaves_to_the_deserializer() {
        for text in [
            "",
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "base: {a: 1}\nc:\n  <<: {b: 2}\n",
            "a: 1\n---\nb: 2\n",
            "a: [1, 2\n",
            "k: ---x\n",
        ] {
            assert!(from_events(text).is_none(), "{text:?}");
        }
        let deep = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        assert!(from_events(&deep).is_none());
    }
}
