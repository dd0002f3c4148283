//! DNR's core: tenant context, the policy language, the reference evaluator
//! and the SQL compilers. No database or host dependency: adapters convert
//! arguments, call in here, and convert the result.

pub mod ast;
pub mod check;
pub mod compile;
pub mod config;
pub mod context;
pub mod eval;
pub mod lexer;
pub mod limits;
pub mod parser;
pub mod print;
pub mod signed;
pub mod span;
pub mod transfer;
pub mod value;

pub use ast::{Operation, PolicySet};
pub use context::TenantContext;
pub use eval::{Decision, RelatedRows, Request, RequestError};
pub use span::{Diagnostic, PolicyErrors, Span};
pub use value::{Row, Value};

/// Parses and checks a policy source. Every error found is returned, each
/// with its line and column.
pub fn parse(source: &str) -> Result<PolicySet, PolicyErrors> {
    if source.len() > limits::MAX_SOURCE_BYTES {
        return Err(PolicyErrors {
            diagnostics: vec![Diagnostic::new(
                Span::new(1, 1, 1),
                format!(
                    "policy source is {} bytes; the limit is {} bytes (1 MiB)",
                    source.len(),
                    limits::MAX_SOURCE_BYTES
                ),
            )],
        });
    }
    let (lines, mut diagnostics) = lexer::lex(source);
    let (set, parse_errors) = parser::parse_lines(&lines);
    diagnostics.extend(parse_errors);
    diagnostics.extend(check::check(&set));
    if diagnostics.is_empty() {
        Ok(set)
    } else {
        diagnostics.sort_by_key(|d| (d.span.line, d.span.column));
        Err(PolicyErrors { diagnostics })
    }
}
