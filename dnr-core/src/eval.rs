//! The reference evaluator: what every engine's enforcement must agree with.
//!
//! Conditions use SQL three-valued logic; a rule allows only when TRUE.
//! Writes also require the written row to be readable by its writer, which
//! is what PostgreSQL's RLS enforces for `INSERT/UPDATE ... RETURNING`, so the
//! meaning is the same with or without `RETURNING` and in every engine.

use std::cmp::Ordering;

use crate::ast::*;
use crate::check::tenant_column;
use crate::context::TenantContext;
use crate::print::rule_text;
use crate::value::{Row, Value};

/// The answer for one row, with the rule or fence that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

impl Decision {
    fn allow(reason: String) -> Decision {
        Decision {
            allowed: true,
            reason,
        }
    }

    fn deny(reason: String) -> Decision {
        Decision {
            allowed: false,
            reason,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("unknown entity `{0}`")]
    UnknownEntity(String),
}

impl PolicySet {
    pub fn entity(&self, name: &str) -> Option<&Entity> {
        self.entities
            .iter()
            .find(|e| e.name == name || e.table == name)
    }

    /// The decision for `op` on one row. For `Update` the row is taken as
    /// both the old and the new version; use [`PolicySet::decide_update`]
    /// when they differ. For `Create` a missing tenant column is filled from
    /// the context and missing defaulted fields take their defaults first,
    /// as every engine does on insert.
    pub fn decide(
        &self,
        entity: &str,
        op: Operation,
        ctx: &TenantContext,
        row: &Row,
    ) -> Result<Decision, EvalError> {
        let judge = self.judge(entity, ctx)?;
        Ok(match op {
            Operation::Read => judge.visible(row),
            Operation::Create => judge.create(&judge.fill_on_create(row)),
            Operation::Update => judge.update(row, row),
            Operation::Delete => judge.delete(row),
        })
    }

    /// The row an insert stores: a missing or NULL tenant column filled from
    /// the context, missing or NULL defaulted fields set to their defaults.
    pub fn fill_on_create(
        &self,
        entity: &str,
        ctx: &TenantContext,
        row: &Row,
    ) -> Result<Row, EvalError> {
        Ok(self.judge(entity, ctx)?.fill_on_create(row))
    }

    pub fn decide_update(
        &self,
        entity: &str,
        ctx: &TenantContext,
        old: &Row,
        new: &Row,
    ) -> Result<Decision, EvalError> {
        Ok(self.judge(entity, ctx)?.update(old, new))
    }

    fn judge<'a>(&'a self, entity: &str, ctx: &'a TenantContext) -> Result<Judge<'a>, EvalError> {
        let entity = self
            .entity(entity)
            .ok_or_else(|| EvalError::UnknownEntity(entity.to_string()))?;
        Ok(Judge {
            set: self,
            entity,
            ctx,
        })
    }
}

struct Judge<'a> {
    set: &'a PolicySet,
    entity: &'a Entity,
    ctx: &'a TenantContext,
}

impl Judge<'_> {
    /// What every engine stores for an inserted row: a missing or NULL
    /// tenant column takes the current tenant, and a missing or NULL field
    /// with a declared default takes the default.
    fn fill_on_create(&self, row: &Row) -> Row {
        let mut row = row.clone();
        if let (Some(column), Some(tenant)) =
            (tenant_column(self.set, self.entity), self.ctx.tenant)
        {
            if row.is_missing_or_null(column) {
                row.set(column, Value::Uuid(tenant));
            }
        }
        for field in &self.entity.fields {
            if let Some(default) = &field.default {
                if row.is_missing_or_null(&field.name) {
                    row.set(&field.name, Value::from_literal(default));
                }
            }
        }
        row
    }

    fn fence(&self, row: &Row) -> Result<(), Decision> {
        let Some(column) = tenant_column(self.set, self.entity) else {
            return Ok(());
        };
        let Some(tenant) = self.ctx.tenant else {
            return Err(Decision::deny(format!(
                "refused by the tenant fence of `{}`: no tenant in context",
                self.entity.name
            )));
        };
        if row.get(column).compare(&Value::Uuid(tenant)) == Some(Ordering::Equal) {
            Ok(())
        } else {
            Err(Decision::deny(format!(
                "refused by the tenant fence of `{}`: `{column}` is not the current tenant",
                self.entity.name
            )))
        }
    }

    /// The first permit rule for `op` that holds, or the default-deny or
    /// forbid decision that refuses.
    fn rules(&self, op: Operation, row: &Row) -> Result<String, Decision> {
        let name = &self.entity.name;
        for rule in self.entity.rules_for(RuleKind::Forbid, op) {
            if self.condition(&rule.condition, row) == Some(true) {
                return Err(Decision::deny(format!(
                    "refused by `forbid {}: {}` on `{name}`",
                    op.as_str(),
                    rule_text(&rule.condition)
                )));
            }
        }
        let mut permits = self.entity.rules_for(RuleKind::Permit, op).peekable();
        if permits.peek().is_none() {
            return Err(Decision::deny(format!(
                "refused: `{name}` has no `{}` rule (default deny)",
                op.as_str()
            )));
        }
        for rule in permits {
            if self.condition(&rule.condition, row) == Some(true) {
                return Ok(format!(
                    "allowed by `{}: {}` on `{name}`",
                    op.as_str(),
                    rule_text(&rule.condition)
                ));
            }
        }
        let texts: Vec<String> = self
            .entity
            .rules_for(RuleKind::Permit, op)
            .map(|r| rule_text(&r.condition))
            .collect();
        Err(Decision::deny(format!(
            "refused by `{}: {}` on `{name}`",
            op.as_str(),
            texts.join(" | ")
        )))
    }

    fn visible(&self, row: &Row) -> Decision {
        match self
            .fence(row)
            .and_then(|()| self.rules(Operation::Read, row))
        {
            Ok(reason) => Decision::allow(reason),
            Err(denied) => denied,
        }
    }

    /// The write `op` on `row`: the fence, the row readable, and `op`'s rules.
    fn write(&self, op: Operation, row: &Row) -> Result<String, Decision> {
        self.fence(row)?;
        let visible = self.visible(row);
        if !visible.allowed {
            return Err(Decision::deny(format!(
                "refused: the {} row would not be readable ({})",
                if op == Operation::Delete {
                    "deleted"
                } else {
                    "written"
                },
                visible.reason
            )));
        }
        self.rules(op, row)
    }

    fn create(&self, new: &Row) -> Decision {
        match self.write(Operation::Create, new) {
            Ok(reason) => Decision::allow(reason),
            Err(denied) => denied,
        }
    }

    fn update(&self, old: &Row, new: &Row) -> Decision {
        match self
            .write(Operation::Update, old)
            .and_then(|_| self.write(Operation::Update, new))
        {
            Ok(reason) => Decision::allow(reason),
            Err(denied) => denied,
        }
    }

    fn delete(&self, old: &Row) -> Decision {
        match self.write(Operation::Delete, old) {
            Ok(reason) => Decision::allow(reason),
            Err(denied) => denied,
        }
    }

    /// SQL three-valued truth: `None` is NULL (unknown).
    fn condition(&self, expr: &Expr, row: &Row) -> Option<bool> {
        match expr {
            Expr::Bool(b) => Some(*b),
            Expr::Authenticated => Some(self.ctx.authenticated()),
            Expr::Anonymous => Some(!self.ctx.authenticated()),
            Expr::Role(role) => Some(self.ctx.has_role(role)),
            Expr::Not(inner) => self.condition(inner, row).map(|b| !b),
            // FALSE wins an AND and TRUE wins an OR; otherwise any NULL
            // makes the whole NULL.
            Expr::And(conditions) => {
                let mut result = Some(true);
                for condition in conditions {
                    match self.condition(condition, row) {
                        Some(false) => return Some(false),
                        Some(true) => {}
                        None => result = None,
                    }
                }
                result
            }
            Expr::Or(alternatives) => {
                let mut result = Some(false);
                for alternative in alternatives {
                    match self.condition(alternative, row) {
                        Some(true) => return Some(true),
                        Some(false) => {}
                        None => result = None,
                    }
                }
                result
            }
            Expr::IsNull { operand, negated } => {
                let is_null = matches!(self.operand(operand, row), Value::Null);
                Some(is_null != *negated)
            }
            Expr::Compare { lhs, op, rhs } => {
                let ordering = self.operand(lhs, row).compare(&self.operand(rhs, row))?;
                Some(match op {
                    CmpOp::Eq => ordering == Ordering::Equal,
                    CmpOp::Ne => ordering != Ordering::Equal,
                    CmpOp::Lt => ordering == Ordering::Less,
                    CmpOp::Le => ordering != Ordering::Greater,
                    CmpOp::Gt => ordering == Ordering::Greater,
                    CmpOp::Ge => ordering != Ordering::Less,
                })
            }
            Expr::In {
                operand,
                negated,
                list,
            } => {
                // x IN (a, b) is x = a OR x = b, with SQL's NULL rules.
                let value = self.operand(operand, row);
                let mut result = Some(false);
                for literal in list {
                    match value.compare(&Value::from_literal(literal)) {
                        Some(Ordering::Equal) => {
                            result = Some(true);
                            break;
                        }
                        Some(_) => {}
                        None => result = None,
                    }
                }
                if *negated {
                    result.map(|b| !b)
                } else {
                    result
                }
            }
        }
    }

    fn operand(&self, operand: &Operand, row: &Row) -> Value {
        match operand {
            Operand::Field(name, _) => row.get(name).clone(),
            Operand::CurrentUser => self.ctx.user.map_or(Value::Null, Value::Uuid),
            Operand::CurrentTenant => self.ctx.tenant.map_or(Value::Null, Value::Uuid),
            Operand::Literal(literal) => Value::from_literal(literal),
        }
    }
}
