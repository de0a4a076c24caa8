//! `${…}` references inside manifest strings (`inputs:`, Pulumi `config:`, `notifications:`):
//! the text split into literal parts and the references between them, `$${` being a literal
//! `${`. What a reference may name is for each caller to say.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Literal text (never empty).
    Text(String),
    /// What stands between `${` and `}`.
    Reference(&'a str),
}

/// A `${` without its closing `}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unclosed;

pub fn split(text: &str) -> Result<Vec<Piece<'_>>, Unclosed> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            literal.push_str(&rest[..start - 1]);
            literal.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        literal.push_str(&rest[..start]);
        let end = rest[start..].find('}').ok_or(Unclosed)?;
        if !literal.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut literal)));
        }
        pieces.push(Piece::Reference(&rest[start + 2..start + end]));
        rest = &rest[start + end + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_references_and_the_escape() {
        assert_eq!(
            split("a${x}b$${y}${env:Z}").unwrap(),
            [
                Piece::Text("a".into()),
                Piece::Reference("x"),
                Piece::Text("b${y}".into()),
                Piece::Reference("env:Z"),
            ]
        );
        assert_eq!(split("").unwrap(), []);
        assert_eq!(split("x ${open"), Err(Unclosed));
    }
}
