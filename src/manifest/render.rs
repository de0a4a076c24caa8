//! A manifest error drawn for people: miette with the offending line and a caret under it,
//! the manifest's credentials masked in the lines it quotes.

use std::fmt;
use std::sync::Arc;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError,
    MietteSpanContents, SourceCode, SourceSpan, SpanContents,
};

use super::error::{Loc, ManifestError};

impl ManifestError {
    /// ```text
    /// error: unknown dependency `netwrk` in stack `security`
    ///    ╭─[cloud/deploy/D1BRV40/deployment.yaml:12:19]
    ///  11 │   security:
    ///  12 │     dependencies: [netwrk]
    ///     ·                    ──────
    ///  13 │     executor: command
    ///     ╰────
    ///   help: did you mean `network`? Known stacks: network, secrets, dns
    /// ```
    pub fn render(&self) -> String {
        self.render_styled(false)
    }

    /// [`render`](Self::render), in colour when `color`.
    pub fn render_styled(&self, color: bool) -> String {
        let source = self
            .source
            .as_deref()
            .map(str::to_owned)
            .or_else(|| {
                (self.at.line > 0)
                    .then(|| std::fs::read_to_string(&self.file).ok())
                    .flatten()
            })
            // The snippet quotes the manifest: never its credentials (same lines and columns).
            .map(|text| Arc::from(super::yaml::mask_secrets(&text)));
        let report = Report {
            error: self,
            snippet: source.and_then(|text| Snippet::new(&self.display_file(), text, self.at)),
        };
        let mut theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        theme.characters.error = "error:".into();
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_wrap_lines(false)
            .with_context_lines(1);
        let mut out = String::new();
        if handler.render_report(&mut out, &report).is_err() {
            out = format!("error: {}\n  help: {}", self.message, self.help);
        }
        // miette indents the header; `error:` starts the line, as every other error does.
        let mut out = out.trim_end().trim_start_matches(' ').to_owned();
        if report.snippet.is_none() {
            // No text to show (the file is missing or changed): still say where.
            let place = match self.at.line {
                0 => self.display_file(),
                line => format!("{}:{line}:{}", self.display_file(), self.at.column),
            };
            let head_end = out.find('\n').unwrap_or(out.len());
            out.insert_str(head_end, &format!("\n  --> {place}"));
        }
        out
    }

    pub(super) fn display_file(&self) -> String {
        let file = self.file.strip_prefix(".").unwrap_or(&self.file);
        file.display().to_string()
    }
}

/// The longest line an error quotes.
const MAX_QUOTED_LINE: usize = 300;

/// The text around the error and where in it the error is, for miette.
struct Snippet {
    source: Source,
    offset: usize,
    len: usize,
}

impl Snippet {
    fn new(name: &str, text: Arc<str>, at: Loc) -> Option<Self> {
        let offset = byte_offset(&text, at)?;
        // A line too long to read in a terminal is not quoted: the place is said instead.
        let line_start = text[..offset].rfind(['\n', '\r']).map_or(0, |i| i + 1);
        let line = text[line_start..].split(['\n', '\r']).next().unwrap_or("");
        if line.chars().count() > MAX_QUOTED_LINE {
            return None;
        }
        let len = token_len(&text[offset..]);
        Some(Snippet {
            source: Source {
                name: name.to_owned(),
                text,
            },
            offset,
            len,
        })
    }
}

/// The manifest's text for miette, with columns counted in characters (as YAML positions
/// are), not bytes.
struct Source {
    name: String,
    text: Arc<str>,
}

impl SourceCode for Source {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.as_ref().read_span(span, before, after)?;
        let start = inner.span().offset();
        let line_start = self.text[..start].rfind(['\n', '\r']).map_or(0, |i| i + 1);
        let column = self.text[line_start..start].chars().count();
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            column,
            inner.line_count(),
        )))
    }
}

/// The byte offset of a 1-based line and (char) column. Lines end at `\n`, `\r\n` or `\r`,
/// as in YAML.
fn byte_offset(text: &str, at: Loc) -> Option<usize> {
    if at.line == 0 {
        return None;
    }
    let bytes = text.as_bytes();
    let mut line = 1u64;
    let mut line_start = 0usize;
    let mut i = 0usize;
    while line < at.line {
        match bytes.get(i)? {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            b'\r' | b'\n' => i += 1,
            _ => {
                i += 1;
                continue;
            }
        }
        line += 1;
        line_start = i;
    }
    let rest = &text[line_start..];
    let line_text = &rest[..rest.find(['\n', '\r']).unwrap_or(rest.len())];
    let column = usize::try_from(at.column.max(1) - 1).ok()?;
    let in_line = line_text
        .char_indices()
        .nth(column)
        .map_or(line_text.len(), |(i, _)| i);
    Some(line_start + in_line)
}

/// The length of the word or scalar starting a text, for the underline.
fn token_len(text: &str) -> usize {
    let line = text.split(['\n', '\r']).next().unwrap_or("");
    let end = match line.chars().next() {
        None => return 0,
        Some(q @ ('"' | '\'')) => line[1..].find(q).map_or(line.len(), |i| i + 2),
        Some(first) => {
            let word = line
                .find(|c: char| c.is_whitespace() || matches!(c, ',' | ']' | '}' | '#'))
                .unwrap_or(line.len());
            // A key's underline stops before its `:`.
            let word = line[..word].trim_end_matches(':').len();
            word.max(first.len_utf8())
        }
    };
    end
}

struct Report<'a> {
    error: &'a ManifestError,
    snippet: Option<Snippet>,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error.message)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error.message)
    }
}

impl std::error::Error for Report<'_> {}

impl Diagnostic for Report<'_> {
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        (!self.error.help.is_empty()).then(|| Box::new(&self.error.help) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.snippet.as_ref().map(|s| &s.source as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let s = self.snippet.as_ref()?;
        Some(Box::new(std::iter::once(LabeledSpan::new(
            None, s.offset, s.len,
        ))))
    }
}
