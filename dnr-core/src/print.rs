//! Prints a policy set back as canonical `.dnr` source. Parsing the output
//! gives the same policy set (a property test holds this).

use std::fmt::{self, Write};

use crate::ast::*;
use crate::check::type_name;

impl fmt::Display for PolicySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "tenancy:")?;
        writeln!(f, "  mode: {}", self.tenancy.mode.as_str())?;
        writeln!(f, "  column: {}", name(&self.tenancy.column))?;
        for entity in &self.entities {
            writeln!(f)?;
            write_entity(f, entity)?;
        }
        Ok(())
    }
}

fn write_entity(f: &mut fmt::Formatter<'_>, entity: &Entity) -> fmt::Result {
    writeln!(f, "entity {}:", entity.name)?;
    if entity.table_explicit {
        writeln!(f, "  table: {}", name(&entity.table))?;
    }
    match &entity.tenant {
        EntityTenant::Default => {}
        EntityTenant::None => writeln!(f, "  tenant: none")?,
        EntityTenant::Column(column) => writeln!(f, "  tenant: {}", name(column))?,
    }
    for field in &entity.fields {
        write!(f, "  {}: {}", field.name, type_source(&field.ty))?;
        if field.primary_key {
            write!(f, " pk")?;
        }
        if field.required {
            write!(f, " required")?;
        }
        if field.unique {
            write!(f, " unique")?;
        }
        if let Some(default) = &field.default {
            write!(f, " = {}", literal_text(default))?;
        }
        writeln!(f)?;
    }
    for (kind, header) in [(RuleKind::Permit, "access"), (RuleKind::Forbid, "forbid")] {
        let mut rules = entity.rules.iter().filter(|r| r.kind == kind).peekable();
        if rules.peek().is_some() {
            writeln!(f, "  {header}:")?;
            for rule in rules {
                writeln!(
                    f,
                    "    {}: {}",
                    rule.op.as_str(),
                    rule_text(&rule.condition)
                )?;
            }
        }
    }
    Ok(())
}

/// A name as source: bare when it lexes as an identifier, else quoted.
fn name(text: &str) -> String {
    let bare = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if bare {
        text.to_string()
    } else {
        literal_text(&Literal::Str(text.to_string()))
    }
}

fn type_source(ty: &FieldType) -> String {
    match ty {
        FieldType::Enum(values) => {
            format!(
                "enum[{}]",
                values.iter().map(|v| name(v)).collect::<Vec<_>>().join(",")
            )
        }
        other => type_name(other),
    }
}

pub fn literal_text(literal: &Literal) -> String {
    match literal {
        Literal::Str(text) => format!("'{}'", text.replace('\'', "''")),
        Literal::Int(n) => n.to_string(),
        // Display never uses exponent notation, which the lexer does not read.
        Literal::Float(x) if x.fract() == 0.0 => format!("{x:.1}"),
        Literal::Float(x) => x.to_string(),
        Literal::Bool(b) => b.to_string(),
        Literal::Null => "null".into(),
    }
}

fn write_chain(out: &mut String, members: &[Expr], joiner: &str, member_precedence: u8) {
    for (index, member) in members.iter().enumerate() {
        if index > 0 {
            out.push_str(joiner);
        }
        write_expr(out, member, member_precedence);
    }
}

fn operand_text(operand: &Operand) -> String {
    match operand {
        Operand::Field(field, _) => field.clone(),
        Operand::This(field, _) => format!("this.{field}"),
        Operand::CurrentUser => "current_user".into(),
        Operand::CurrentTenant => "current_tenant".into(),
        Operand::Literal(literal) => literal_text(literal),
    }
}

/// A condition as source, with only the parentheses precedence needs.
pub fn rule_text(expr: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, expr, 0);
    out
}

/// Precedence: `or` 1, `and` 2, `not` 3, atoms 4. `exists` (and `not
/// exists`) is 2: its condition runs over the `and`s after it.
fn write_expr(out: &mut String, expr: &Expr, parent: u8) {
    let own = match expr {
        Expr::Exists(_) => 2,
        Expr::Not(inner) if matches!(**inner, Expr::Exists(_)) => 2,
        Expr::Or(..) => 1,
        Expr::And(..) => 2,
        Expr::Not(_) => 3,
        _ => 4,
    };
    let parenthesize = own < parent;
    if parenthesize {
        out.push('(');
    }
    match expr {
        Expr::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Expr::Authenticated => out.push_str("authenticated"),
        Expr::Anonymous => out.push_str("anonymous"),
        Expr::Role(role) => {
            let _ = write!(out, "role({})", name(role));
        }
        Expr::Compare { lhs, op, rhs } => {
            let symbol = if *op == CmpOp::Ne { "!=" } else { op.as_sql() };
            let _ = write!(out, "{} {symbol} {}", operand_text(lhs), operand_text(rhs));
        }
        Expr::In {
            operand,
            negated,
            list,
        } => {
            let items: Vec<String> = list.iter().map(literal_text).collect();
            let not = if *negated { "not " } else { "" };
            let _ = write!(
                out,
                "{} {not}in [{}]",
                operand_text(operand),
                items.join(", ")
            );
        }
        Expr::IsNull { operand, negated } => {
            let not = if *negated { "not " } else { "" };
            let _ = write!(out, "{} is {not}null", operand_text(operand));
        }
        Expr::Not(inner) => {
            out.push_str("not ");
            let inner_parent = if matches!(**inner, Expr::Exists(_)) {
                2
            } else {
                3
            };
            write_expr(out, inner, inner_parent);
        }
        Expr::Exists(exists) => {
            let _ = write!(out, "exists {} where ", exists.entity);
            write_expr(out, &exists.condition, 2);
        }
        // A chain's members that are themselves the same operator were
        // parenthesized in the source (the parser flattens the rest).
        Expr::And(conditions) => write_chain(out, conditions, " and ", 3),
        Expr::Or(alternatives) => write_chain(out, alternatives, " or ", 2),
    }
    if parenthesize {
        out.push(')');
    }
}
