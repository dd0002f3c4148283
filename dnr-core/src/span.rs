//! Source locations and rendered diagnostics.

use std::fmt;

/// A location in a policy source: 1-based line and column, and the length of
/// the offending text in characters (at least 1 when rendered).
///
/// Spans are metadata: two syntax nodes compare equal wherever they were
/// written, which is what makes `parse(print(p)) == p` a meaningful law.
#[derive(Debug, Clone, Copy, Default, Eq)]
pub struct Span {
    pub line: usize,
    pub column: usize,
    pub len: usize,
}

impl PartialEq for Span {
    fn eq(&self, _other: &Span) -> bool {
        true
    }
}

impl Span {
    pub fn new(line: usize, column: usize, len: usize) -> Span {
        Span { line, column, len }
    }

    /// The span from the start of `self` to the end of `other` (same line), or
    /// `self` when they are on different lines.
    pub fn to(self, other: Span) -> Span {
        if self.line == other.line && other.column >= self.column {
            Span::new(
                self.line,
                self.column,
                other.column + other.len - self.column,
            )
        } else {
            self
        }
    }
}

/// One error found in a policy source, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub span: Span,
    /// Another place the error involves (the first of two colliding names),
    /// with what it is.
    pub related: Option<(Span, String)>,
}

impl Diagnostic {
    pub fn new(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            span,
            related: None,
        }
    }

    /// The same error, also pointing at `span`, labelled `note`.
    pub fn with_related(mut self, span: Span, note: impl Into<String>) -> Diagnostic {
        self.related = Some((span, note.into()));
        self
    }

    /// Renders the error with the source line and a caret under the offending
    /// text, like rustc:
    ///
    /// ```text
    /// error: unknown field `ownr` in entity `Task`
    ///  --> policies.dnr:7:9
    ///   |
    /// 7 |   read: ownr = current_user
    ///   |         ^^^^
    /// ```
    ///
    /// A related place follows as a `note:` with its own caret.
    pub fn render(&self, source: &str, file_name: &str) -> String {
        let mut out = snippet("error", &self.message, self.span, source, file_name);
        if let Some((span, note)) = &self.related {
            out.push_str(&snippet("note", note, *span, source, file_name));
        }
        out
    }
}

/// Characters of a source line shown on each side of the error's column;
/// a longer line (a generated source can hold a megabyte on one line) is
/// clipped, with `...` where text was left out.
const CONTEXT_CHARS: usize = 60;

fn snippet(level: &str, message: &str, span: Span, source: &str, file_name: &str) -> String {
    let full_line = source
        .lines()
        .nth(span.line.saturating_sub(1))
        .unwrap_or("");
    let chars: Vec<char> = full_line.chars().collect();
    let column = span.column.saturating_sub(1).min(chars.len());
    let start = column.saturating_sub(CONTEXT_CHARS);
    let end = chars.len().min(column + span.len.max(1) + CONTEXT_CHARS);
    let prefix = if start > 0 { "..." } else { "" };
    let suffix = if end < chars.len() { "..." } else { "" };
    let shown: String = chars[start..end].iter().collect();
    let line_text = format!("{prefix}{shown}{suffix}");
    let number = span.line.to_string();
    let gutter = " ".repeat(number.len());
    let caret_pad: String = " ".repeat(prefix.len())
        + &chars[start..column]
            .iter()
            .map(|c| if *c == '\t' { '\t' } else { ' ' })
            .collect::<String>();
    let carets = "^".repeat(span.len.min(end - column).max(1));
    format!(
        "{level}: {message}\n{gutter}--> {file_name}:{line}:{col}\n{gutter} |\n{number} | {line_text}\n{gutter} | {caret_pad}{carets}\n",
        line = span.line,
        col = span.column,
    )
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.span.line, self.span.column, self.message
        )?;
        if let Some((span, note)) = &self.related {
            write!(f, " ({note} at {}:{})", span.line, span.column)?;
        }
        Ok(())
    }
}

/// Every error found in one policy source. Parsing and checking go on after an
/// error so that a user sees all of them at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyErrors {
    pub diagnostics: Vec<Diagnostic>,
}

impl PolicyErrors {
    /// All diagnostics rendered with carets, in source order.
    pub fn render(&self, source: &str, file_name: &str) -> String {
        self.diagnostics
            .iter()
            .map(|d| d.render(source, file_name))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.diagnostics.iter().map(|d| d.to_string()).collect();
        write!(f, "{}", parts.join("; "))
    }
}
