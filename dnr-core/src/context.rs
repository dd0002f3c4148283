//! The tenant context a host sets per connection and policies read.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::value::{parse_uuid, ValueError};

/// Who is asking: the tenant, the user and their roles. Everything is
/// optional; an empty context sees no tenant-scoped rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantContext {
    pub tenant: Option<Uuid>,
    pub user: Option<Uuid>,
    pub roles: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error("invalid tenant id: {0}")]
    Tenant(ValueError),
    #[error("invalid user id: {0}")]
    User(ValueError),
    #[error("invalid role name `{0}`: use letters, digits, `_`, `-`, `.` or `:`")]
    Role(String),
    #[error("invalid roles `{0}`: expected a JSON array of strings or a comma-separated list")]
    RoleList(String),
}

impl TenantContext {
    /// Builds a context from text as hosts receive it. `None` and the empty
    /// string mean "unset"; anything else must be a valid uuid.
    pub fn parse(
        tenant: Option<&str>,
        user: Option<&str>,
        roles: &[&str],
    ) -> Result<TenantContext, ContextError> {
        Ok(TenantContext {
            tenant: parse_optional_uuid(tenant).map_err(ContextError::Tenant)?,
            user: parse_optional_uuid(user).map_err(ContextError::User)?,
            roles: roles
                .iter()
                .map(|r| validate_role(r))
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains(role)
    }

    pub fn authenticated(&self) -> bool {
        self.user.is_some()
    }

    /// The roles as one comma-separated string, the form stored in
    /// PostgreSQL's `dnr.roles` setting.
    pub fn roles_csv(&self) -> String {
        self.roles.iter().cloned().collect::<Vec<_>>().join(",")
    }
}

/// `None` or empty text is unset; anything else must parse.
pub fn parse_optional_uuid(text: Option<&str>) -> Result<Option<Uuid>, ValueError> {
    match text {
        None | Some("") => Ok(None),
        Some(text) => parse_uuid(text).map(Some),
    }
}

/// Role names are plain words so that they can be stored in a
/// comma-separated setting and never need quoting.
pub fn validate_role(role: &str) -> Result<String, ContextError> {
    let valid = !role.is_empty()
        && role.len() <= 63
        && role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if valid {
        Ok(role.to_string())
    } else {
        Err(ContextError::Role(role.to_string()))
    }
}

/// Parses roles given as a JSON array (`["admin","staff"]`) or a comma list
/// (`admin,staff`); blank text is no roles.
pub fn parse_role_list(text: &str) -> Result<BTreeSet<String>, ContextError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(BTreeSet::new());
    }
    if trimmed.starts_with('[') {
        let items: Vec<String> =
            serde_json::from_str(trimmed).map_err(|_| ContextError::RoleList(text.to_string()))?;
        return items.iter().map(|r| validate_role(r)).collect();
    }
    trimmed
        .split(',')
        .map(|r| validate_role(r.trim()))
        .collect()
}
