//! `dnr check FILE` and `dnr compile FILE --target T`.

use std::path::Path;

use dnr_core::compile::Target;

/// Reads and parses a policy file; errors come rendered with carets.
pub fn load(file: &Path) -> Result<(String, dnr_core::PolicySet), String> {
    let name = file.display().to_string();
    let source =
        std::fs::read_to_string(file).map_err(|e| format!("error: cannot read `{name}`: {e}"))?;
    let set = dnr_core::parse(&source).map_err(|errors| errors.render(&source, &name))?;
    Ok((source, set))
}

pub fn check(file: &Path) -> Result<(), String> {
    let (_, set) = load(file)?;
    let rules: usize = set.entities.iter().map(|e| e.rules.len()).sum();
    crate::verb_args::print(&format!(
        "{}: ok ({} entities, {rules} rules)\n",
        file.display(),
        set.entities.len()
    ))
}

pub fn compile(file: &Path, target: &str) -> Result<(), String> {
    let target = Target::parse(target).ok_or_else(|| {
        format!("error: unknown target `{target}`; expected postgres, postgres-plain, postgres-citus or sqlite")
    })?;
    let (_, set) = load(file)?;
    let sql = dnr_core::compile::compile(&set, target).map_err(|e| format!("error: {e}"))?;
    crate::verb_args::print(&sql)
}
