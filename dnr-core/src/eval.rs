//! The reference evaluator: what every engine's enforcement must agree with.
//!
//! Conditions use SQL three-valued logic; a rule allows only when TRUE.
//! Writes also require the written row to be readable by its writer, which
//! is what PostgreSQL's RLS enforces for `INSERT/UPDATE ... RETURNING`, so the
//! meaning is the same with or without `RETURNING` and in every engine.

use std::cmp::Ordering;
use std::collections::HashMap;

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

/// The stored rows of related entities, as the host's database holds them,
/// by entity name: what an `exists` looks through. DNR filters them by the
/// related entity's fence and read rule itself, so hosts pass every row (see
/// [`PolicySet::related_entities`] for which entities a decision may need).
#[derive(Debug, Clone, Default)]
pub struct RelatedRows {
    rows: HashMap<String, Vec<Row>>,
}

impl RelatedRows {
    pub fn new() -> RelatedRows {
        RelatedRows::default()
    }

    pub fn insert(&mut self, entity: &str, rows: Vec<Row>) {
        self.rows.insert(entity.to_string(), rows);
    }

    fn get(&self, entity: &str) -> &[Row] {
        self.rows.get(entity).map_or(&[], Vec::as_slice)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("unknown entity `{0}`")]
    UnknownEntity(String),
}

/// Why a check request (entity and operation by name, the record as JSON,
/// as every host takes them) cannot be answered: one wording for the
/// PostgreSQL extension, the SQLite extension and the npm package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("unknown operation `{0}`: expected create, read (or list), update or delete")]
    Operation(String),
    #[error("unknown entity `{name}`: the policies declare {known}")]
    Entity { name: String, known: String },
    #[error("invalid record for `{entity}`: {error}")]
    Record {
        entity: String,
        #[source]
        error: crate::value::ValueError,
    },
}

/// A check request read against the policies.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub entity: &'a Entity,
    pub op: Operation,
    pub row: Row,
}

impl PolicySet {
    /// Reads a check request: the entity (by name or table), the
    /// operation's name and the record's JSON.
    pub fn request(
        &self,
        entity: &str,
        op: &str,
        record: &serde_json::Value,
    ) -> Result<Request<'_>, RequestError> {
        let op = Operation::parse(op).ok_or_else(|| RequestError::Operation(op.to_string()))?;
        let entity = self.entity(entity).ok_or_else(|| RequestError::Entity {
            name: entity.to_string(),
            known: if self.entities.is_empty() {
                "none".to_string()
            } else {
                self.entities
                    .iter()
                    .map(|e| format!("`{}`", e.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })?;
        let row = Row::from_json(entity, record).map_err(|error| RequestError::Record {
            entity: entity.name.clone(),
            error,
        })?;
        Ok(Request { entity, op, row })
    }

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
        self.decide_with(entity, op, ctx, row, &RelatedRows::default())
    }

    /// [`PolicySet::decide`] with the rows `exists` rules look through
    /// (without them, no related row exists).
    pub fn decide_with(
        &self,
        entity: &str,
        op: Operation,
        ctx: &TenantContext,
        row: &Row,
        related: &RelatedRows,
    ) -> Result<Decision, EvalError> {
        let judge = self.judge(entity, ctx, related)?;
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
        Ok(self
            .judge(entity, ctx, &RelatedRows::default())?
            .fill_on_create(row))
    }

    pub fn decide_update(
        &self,
        entity: &str,
        ctx: &TenantContext,
        old: &Row,
        new: &Row,
    ) -> Result<Decision, EvalError> {
        self.decide_update_with(entity, ctx, old, new, &RelatedRows::default())
    }

    pub fn decide_update_with(
        &self,
        entity: &str,
        ctx: &TenantContext,
        old: &Row,
        new: &Row,
        related: &RelatedRows,
    ) -> Result<Decision, EvalError> {
        Ok(self.judge(entity, ctx, related)?.update(old, new))
    }

    /// The entities whose rows a decision on `entity` may look through: those
    /// its rules name in `exists`, and, since the related rows are the
    /// readable ones, those their read rules name, and so on.
    pub fn related_entities(&self, entity: &str) -> Vec<&Entity> {
        let mut found: Vec<&Entity> = Vec::new();
        let mut pending: Vec<&Expr> = match self.entity(entity) {
            Some(entity) => entity.rules.iter().map(|r| &r.condition).collect(),
            None => Vec::new(),
        };
        while let Some(condition) = pending.pop() {
            for exists in condition.exists_clauses() {
                let Some(related) = self.entities.iter().find(|e| e.name == exists.entity) else {
                    continue;
                };
                if found.iter().any(|e| e.name == related.name) {
                    continue;
                }
                found.push(related);
                pending.extend(
                    related
                        .rules
                        .iter()
                        .filter(|r| r.op == Operation::Read)
                        .map(|r| &r.condition),
                );
            }
        }
        found
    }

    fn judge<'a>(
        &'a self,
        entity: &str,
        ctx: &'a TenantContext,
        related: &'a RelatedRows,
    ) -> Result<Judge<'a>, EvalError> {
        let entity = self
            .entity(entity)
            .ok_or_else(|| EvalError::UnknownEntity(entity.to_string()))?;
        Ok(Judge {
            set: self,
            entity,
            ctx,
            related,
        })
    }
}

struct Judge<'a> {
    set: &'a PolicySet,
    entity: &'a Entity,
    ctx: &'a TenantContext,
    related: &'a RelatedRows,
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
            if self.condition(&rule.condition, row, row) == Some(true) {
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
            if self.condition(&rule.condition, row, row) == Some(true) {
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
        let mut failed = Vec::new();
        for rule in self.entity.rules_for(RuleKind::Permit, op) {
            self.failed_exists(&rule.condition, row, false, &mut failed);
        }
        failed.dedup();
        let detail = if failed.is_empty() {
            String::new()
        } else {
            format!(" ({})", failed.join("; "))
        };
        Err(Decision::deny(format!(
            "refused by `{}: {}` on `{name}`{detail}",
            op.as_str(),
            texts.join(" | ")
        )))
    }

    /// The `exists` clauses of a refused rule that did not hold, described,
    /// looking through `and`, `or` and `not` (not into another `exists`).
    fn failed_exists(&self, expr: &Expr, row: &Row, negated: bool, out: &mut Vec<String>) {
        match expr {
            Expr::And(members) | Expr::Or(members) => {
                for member in members {
                    self.failed_exists(member, row, negated, out);
                }
            }
            Expr::Not(inner) => self.failed_exists(inner, row, !negated, out),
            Expr::Exists(exists) => {
                let found = self.exists(exists, row);
                let condition = rule_text(&exists.condition);
                if found == negated {
                    out.push(if negated {
                        format!("a readable `{}` row satisfies `{condition}`", exists.entity)
                    } else {
                        format!(
                            "no readable `{}` row satisfies `{condition}`",
                            exists.entity
                        )
                    });
                }
            }
            _ => {}
        }
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

    /// SQL three-valued truth: `None` is NULL (unknown). Bare fields are
    /// `row`'s; `this.<field>` (inside `exists`) is the checked row's.
    fn condition(&self, expr: &Expr, row: &Row, this: &Row) -> Option<bool> {
        match expr {
            Expr::Bool(b) => Some(*b),
            Expr::Authenticated => Some(self.ctx.authenticated()),
            Expr::Anonymous => Some(!self.ctx.authenticated()),
            Expr::Role(role) => Some(self.ctx.has_role(role)),
            Expr::Not(inner) => self.condition(inner, row, this).map(|b| !b),
            // TRUE or FALSE, never NULL: whether a row of the related entity
            // that this context may read satisfies the condition.
            Expr::Exists(exists) => Some(self.exists(exists, this)),
            // FALSE wins an AND and TRUE wins an OR; otherwise any NULL
            // makes the whole NULL.
            Expr::And(conditions) => {
                let mut result = Some(true);
                for condition in conditions {
                    match self.condition(condition, row, this) {
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
                    match self.condition(alternative, row, this) {
                        Some(true) => return Some(true),
                        Some(false) => {}
                        None => result = None,
                    }
                }
                result
            }
            Expr::IsNull { operand, negated } => {
                let is_null = matches!(self.operand(operand, row, this), Value::Null);
                Some(is_null != *negated)
            }
            Expr::Compare { lhs, op, rhs } => {
                let ordering = self
                    .operand(lhs, row, this)
                    .compare(&self.operand(rhs, row, this))?;
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
                let value = self.operand(operand, row, this);
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

    fn exists(&self, exists: &Exists, this: &Row) -> bool {
        let Some(entity) = self.set.entities.iter().find(|e| e.name == exists.entity) else {
            return false;
        };
        let related = Judge {
            set: self.set,
            entity,
            ctx: self.ctx,
            related: self.related,
        };
        self.related.get(&entity.name).iter().any(|candidate| {
            related.condition(&exists.condition, candidate, this) == Some(true)
                && related.visible(candidate).allowed
        })
    }

    fn operand(&self, operand: &Operand, row: &Row, this: &Row) -> Value {
        match operand {
            Operand::Field(name, _) => row.get(name).clone(),
            Operand::This(name, _) => this.get(name).clone(),
            Operand::CurrentUser => self.ctx.user.map_or(Value::Null, Value::Uuid),
            Operand::CurrentTenant => self.ctx.tenant.map_or(Value::Null, Value::Uuid),
            Operand::Literal(literal) => Value::from_literal(literal),
        }
    }
}
