//! A project: its `dnr.toml`, and the paths in it resolved against the
//! directory that holds it.

use std::path::{Path, PathBuf};

use dnr_core::ast::TenantMode;
use dnr_core::config::{Backend, Config, DatabaseConfig};
use dnr_core::PolicySet;

use crate::migrations::{self, Migration};

/// The configuration file's name, looked up in the current directory.
pub const CONFIG_FILE: &str = "dnr.toml";

#[derive(Debug, Clone)]
pub struct Project {
    /// The directory of `dnr.toml`; relative paths in it start here.
    pub root: PathBuf,
    pub config_file: PathBuf,
    pub database: DatabaseConfig,
}

/// A policy source and its parse.
#[derive(Debug, Clone)]
pub struct Policy {
    pub source: String,
    pub set: PolicySet,
}

impl Project {
    /// Loads `explicit`, or `./dnr.toml`.
    pub fn load(explicit: Option<&Path>) -> Result<Project, String> {
        let config_file = match explicit {
            Some(path) => path.to_path_buf(),
            None => PathBuf::from(CONFIG_FILE),
        };
        let text = std::fs::read_to_string(&config_file).map_err(|e| {
            if explicit.is_none() && e.kind() == std::io::ErrorKind::NotFound {
                "error: no dnr.toml in the current directory; run where it is or pass --config FILE"
                    .to_string()
            } else {
                format!("error: cannot read `{}`: {e}", config_file.display())
            }
        })?;
        let config = Config::parse(&text).map_err(|e| {
            // The message starts with `dnr.toml`: name the file as given.
            let message = e.to_string();
            let rest = message.strip_prefix("dnr.toml").unwrap_or(&message);
            format!("error: {}{rest}", config_file.display())
        })?;
        let root = match config_file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let project = Project {
            root,
            config_file,
            database: config.database,
        };
        project.check_mode()?;
        Ok(project)
    }

    fn check_mode(&self) -> Result<(), String> {
        let mode = self.database.tenant_mode;
        match (self.database.backend, mode) {
            (Backend::Sqlite, TenantMode::Schema) => Err(format!(
                "error: {}: tenant_mode = \"schema\" needs backend = \"postgres\"; SQLite keeps one file per tenant with tenant_mode = \"database\"",
                self.config_file.display()
            )),
            _ => Ok(()),
        }
    }

    /// A path from the configuration, relative to the project's root.
    pub fn path(&self, configured: &str) -> PathBuf {
        let path = Path::new(configured);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.root.join(path)
        }
    }

    pub fn mode(&self) -> TenantMode {
        self.database.tenant_mode
    }

    /// The policy file, parsed; its tenancy mode must be the project's.
    pub fn policy(&self) -> Result<Policy, String> {
        let path = self.path(&self.database.policies);
        let (source, set) = crate::check::load(&path)?;
        let declared = set.tenancy.mode;
        if declared != self.mode() {
            return Err(format!(
                "error: `{}` declares tenancy mode `{}` but {} sets tenant_mode = \"{}\"; make them agree (`tenancy:` / `mode: {}` in the policy)",
                path.display(),
                declared.as_str(),
                self.config_file.display(),
                self.mode().as_str(),
                self.mode().as_str(),
            ));
        }
        Ok(Policy { source, set })
    }

    /// The policy file if it exists (tenants can be created before any
    /// policy is written).
    pub fn policy_if_present(&self) -> Result<Option<Policy>, String> {
        if self.path(&self.database.policies).exists() {
            self.policy().map(Some)
        } else {
            Ok(None)
        }
    }

    /// The versioned migration files, in order (none when the directory is
    /// missing).
    pub fn migrations(&self) -> Result<Vec<Migration>, String> {
        let dialect = match self.database.backend {
            Backend::Sqlite => migrations::Dialect::Sqlite,
            Backend::Postgres => migrations::Dialect::Postgres,
        };
        migrations::load_dir(
            &self.path(&self.database.migrations),
            dialect,
            self.mode() == TenantMode::Schema,
        )
    }
}
