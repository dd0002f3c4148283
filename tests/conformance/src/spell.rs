//! How generated values are spelled when a write binds them: every spelling
//! the engines accept for a column's type, so that an engine that stores,
//! checks or compares a value by its spelling rather than by its meaning
//! disagrees with the others. The case keeps each value's meaning
//! (`Values`, the update's `n`/`u`/`move_to`): the reference evaluates
//! that; the spelling is how the engines receive it.
//!
//! By default only spellings every engine is meant to read alike are
//! generated. `DNR_CONFORMANCE_SPELLINGS=all` adds those that PostgreSQL
//! accepts and DNR's SQLite side reads otherwise (RECORDED.md, "Mutation
//! runs (issue 22)"): a uuid with a hyphen after every four digits (PostgreSQL
//! accepts it, `dnr_uuid` refuses it), booleans `'t'`/`'f'` and
//! `'true'`/`'false'` (PostgreSQL's true/false, stored by SQLite as that
//! text), and non-canonical uuids in WHERE clauses (compared by value in
//! PostgreSQL, as text in SQLite).

use serde::{Deserialize, Serialize};

use crate::case::{insert_columns, Action, Case, Rng, Values, USERS};

/// One value's spelling. Which apply depends on the column's type; a
/// spelling of another type's leaves the value as it is (`Native`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// The value as the case holds it: a uuid's canonical lower-case
    /// hyphenated text, a number, a boolean (SQLite binds it as 0/1).
    #[default]
    Native,
    /// uuid: upper-case hex digits.
    Upper,
    /// uuid: the canonical text in braces, `{...}`.
    Braced,
    /// uuid: 32 hex digits without hyphens.
    Bare,
    /// uuid: 32 upper-case hex digits in braces.
    BracedUpperBare,
    /// uuid: a hyphen after every group of four hex digits
    /// (`aaaa-aaaa-aaaa-4aaa-...`), which PostgreSQL 15 accepts. `all` only.
    Grouped,
    /// number: its decimal text, `'5'`.
    Text,
    /// number: its decimal text with a space either side, `' 5 '`.
    Padded,
    /// boolean: the text `'1'` / `'0'`.
    Digit,
    /// boolean: the text `'t'` / `'f'` (PostgreSQL's output). `all` only.
    Letter,
    /// boolean: the text `'true'` / `'false'`. `all` only.
    Word,
}

impl Form {
    fn is_native(&self) -> bool {
        *self == Form::Native
    }
}

/// The spelling of each value a write binds: the row's columns, the tenant
/// column (an insert's tenant, an update's `move_to`) and the WHERE
/// clause's filter (`id` spells the WHERE's id too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Spell {
    #[serde(skip_serializing_if = "Form::is_native")]
    pub id: Form,
    #[serde(skip_serializing_if = "Form::is_native")]
    pub n: Form,
    #[serde(skip_serializing_if = "Form::is_native")]
    pub u: Form,
    #[serde(skip_serializing_if = "Form::is_native")]
    pub b: Form,
    #[serde(skip_serializing_if = "Form::is_native")]
    pub d: Form,
    #[serde(skip_serializing_if = "Form::is_native")]
    pub tenant: Form,
    #[serde(skip_serializing_if = "Form::is_native")]
    pub filter: Form,
}

impl Spell {
    pub fn is_native(&self) -> bool {
        *self == Spell::default()
    }
}

/// A second condition in an update's or delete's WHERE clause, after
/// `id = ?`: the row's `u` or `b` equals the value (its canonical meaning;
/// `Spell::filter` spells it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    U(String),
    B(bool),
}

/// A column's declared type, as far as spelling goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    Uuid,
    Bool,
}

/// A value as bound: JSON's `null`, number, string or boolean for Node.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Arg {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
}

/// One bound value of a statement: the column it is written to or
/// compared with, that column's type, the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub column: &'static str,
    pub kind: Kind,
    pub arg: Arg,
}

/// `text` (a canonical uuid) spelled as `form` says.
pub fn uuid_text(text: &str, form: Form) -> String {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    match form {
        Form::Upper => text.to_ascii_uppercase(),
        Form::Braced => format!("{{{text}}}"),
        Form::Bare => hex,
        Form::BracedUpperBare => format!("{{{}}}", hex.to_ascii_uppercase()),
        Form::Grouped => hex
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("-"),
        _ => text.to_string(),
    }
}

fn int_arg(value: Option<i64>, form: Form) -> Arg {
    match (value, form) {
        (None, _) => Arg::Null,
        (Some(n), Form::Text) => Arg::Text(n.to_string()),
        (Some(n), Form::Padded) => Arg::Text(format!(" {n} ")),
        (Some(n), _) => Arg::Int(n),
    }
}

fn uuid_arg(value: Option<&str>, form: Form) -> Arg {
    value.map_or(Arg::Null, |u| Arg::Text(uuid_text(u, form)))
}

fn bool_arg(value: Option<bool>, form: Form) -> Arg {
    let text = |t: &str, f: &str| Arg::Text(if value == Some(true) { t } else { f }.to_string());
    match (value, form) {
        (None, _) => Arg::Null,
        (Some(_), Form::Digit) => text("1", "0"),
        (Some(_), Form::Letter) => text("t", "f"),
        (Some(_), Form::Word) => text("true", "false"),
        (Some(b), _) => Arg::Bool(b),
    }
}

fn slot(column: &'static str, kind: Kind, arg: Arg) -> Slot {
    Slot { column, kind, arg }
}

/// An insert's or upsert's values, in `insert_columns` order.
pub fn row_slots(values: &Values, tenant: Option<&str>, spell: &Spell) -> Vec<Slot> {
    let mut slots = vec![
        slot("id", Kind::Int, int_arg(Some(values.id), spell.id)),
        slot("n", Kind::Int, int_arg(values.n, spell.n)),
        slot(
            "t",
            Kind::Text,
            values.t.clone().map_or(Arg::Null, Arg::Text),
        ),
        slot("u", Kind::Uuid, uuid_arg(values.u.as_deref(), spell.u)),
        slot("b", Kind::Bool, bool_arg(values.b, spell.b)),
        slot("d", Kind::Int, int_arg(values.d, spell.d)),
    ];
    if let Some(tenant) = tenant {
        slots.push(slot(
            "tenant_id",
            Kind::Uuid,
            uuid_arg(Some(tenant), spell.tenant),
        ));
    }
    slots
}

/// An update's SET list: `n`, `u`, and the tenant column when it moves.
pub fn set_slots(
    n: Option<i64>,
    u: Option<&str>,
    move_to: Option<&str>,
    spell: &Spell,
) -> Vec<Slot> {
    let mut slots = vec![
        slot("n", Kind::Int, int_arg(n, spell.n)),
        slot("u", Kind::Uuid, uuid_arg(u, spell.u)),
    ];
    if let Some(tenant) = move_to {
        slots.push(slot(
            "tenant_id",
            Kind::Uuid,
            uuid_arg(Some(tenant), spell.tenant),
        ));
    }
    slots
}

/// A WHERE clause's values: `id`, then the filter's.
pub fn where_slots(id: i64, filter: Option<&Filter>, spell: &Spell) -> Vec<Slot> {
    let mut slots = vec![slot("id", Kind::Int, int_arg(Some(id), spell.id))];
    match filter {
        Some(Filter::U(u)) => slots.push(slot("u", Kind::Uuid, uuid_arg(Some(u), spell.filter))),
        Some(Filter::B(b)) => slots.push(slot("b", Kind::Bool, bool_arg(Some(*b), spell.filter))),
        None => {}
    }
    slots
}

/// A write step as SQLite statement text with `?` marks (no RETURNING)
/// and the values it binds, in order; None for other steps.
pub fn sqlite_statement(action: &Action) -> Option<(String, Vec<Arg>)> {
    let args = |slots: Vec<Slot>| slots.into_iter().map(|s| s.arg).collect::<Vec<_>>();
    let joined = |slots: &[Slot], sep: &str| {
        slots
            .iter()
            .map(|s| format!("{} = ?", s.column))
            .collect::<Vec<_>>()
            .join(sep)
    };
    Some(match action {
        Action::Insert {
            table,
            tenant,
            values,
            spell,
        } => {
            let (columns, marks) = insert_columns(tenant.is_some());
            (
                format!("INSERT INTO {table} ({columns}) VALUES ({marks})"),
                args(row_slots(values, tenant.as_deref(), spell)),
            )
        }
        Action::Upsert {
            table,
            tenant,
            values,
            mode,
            spell,
            ..
        } => {
            let (verb, clause) = mode.sqlite_parts();
            let (columns, marks) = insert_columns(tenant.is_some());
            (
                format!("{verb} {table} ({columns}) VALUES ({marks}){clause}"),
                args(row_slots(values, tenant.as_deref(), spell)),
            )
        }
        Action::Update {
            table,
            id,
            n,
            u,
            move_to,
            filter,
            spell,
            ..
        } => {
            let set = set_slots(*n, u.as_deref(), move_to.as_deref(), spell);
            let wheres = where_slots(*id, filter.as_ref(), spell);
            let sql = format!(
                "UPDATE {table} SET {} WHERE {}",
                joined(&set, ", "),
                joined(&wheres, " AND ")
            );
            (sql, args(set.into_iter().chain(wheres).collect()))
        }
        Action::Delete {
            table,
            id,
            filter,
            spell,
            ..
        } => {
            let wheres = where_slots(*id, filter.as_ref(), spell);
            (
                format!("DELETE FROM {table} WHERE {}", joined(&wheres, " AND ")),
                args(wheres),
            )
        }
        _ => return None,
    })
}

/// Whether the disagreeing spellings are generated too
/// (`DNR_CONFORMANCE_SPELLINGS=all`).
pub fn all_spellings() -> bool {
    std::env::var("DNR_CONFORMANCE_SPELLINGS").as_deref() == Ok("all")
}

const UUIDS: [Form; 7] = [
    Form::Native,
    Form::Native,
    Form::Native,
    Form::Upper,
    Form::Braced,
    Form::Bare,
    Form::BracedUpperBare,
];
const NUMBERS: [Form; 4] = [Form::Native, Form::Native, Form::Text, Form::Padded];
const BOOLEANS: [Form; 3] = [Form::Native, Form::Native, Form::Digit];

fn pick_form(rng: &mut Rng, agreed: &[Form], disagreeing: &[Form], all: bool) -> Form {
    if all && rng.chance(25) {
        *rng.pick(disagreeing)
    } else {
        *rng.pick(agreed)
    }
}

/// Gives every write of `case` spellings, and some updates and deletes a
/// filter, from an rng of their own: the case's policy, rows and steps are
/// those the same seed gave before spellings existed.
pub fn spell_case(case: &mut Case, all: bool) {
    let mut rng = Rng::new(case.seed ^ 0x5BE1_1ED0_0000_0000 ^ u64::from(case.exists));
    // The meaning each row's id had when seeded: a filter mostly names it.
    let seeded: Vec<(String, i64, Option<String>, Option<bool>)> = case
        .rows
        .iter()
        .map(|r| (r.table.clone(), r.values.id, r.values.u.clone(), r.values.b))
        .collect();
    for step in &mut case.steps {
        let mut spell = Spell {
            id: pick_form(&mut rng, &NUMBERS, &[], false),
            n: pick_form(&mut rng, &NUMBERS, &[], false),
            u: pick_form(&mut rng, &UUIDS, &[Form::Grouped], all),
            b: pick_form(&mut rng, &BOOLEANS, &[Form::Letter, Form::Word], all),
            d: pick_form(&mut rng, &NUMBERS, &[], false),
            tenant: pick_form(&mut rng, &UUIDS, &[Form::Grouped], all),
            filter: Form::Native,
        };
        let filter_roll = rng.below(100);
        let pick_user = rng.below(USERS.len());
        let pick_bool = rng.chance(50);
        let filter_uuid = pick_form(&mut rng, &[Form::Native], &UUIDS[3..], all);
        let filter_bool = pick_form(&mut rng, &BOOLEANS, &[Form::Letter, Form::Word], all);
        let (table, id) = match &step.action {
            Action::Update { table, id, .. } | Action::Delete { table, id, .. } => {
                (table.clone(), *id)
            }
            _ => (String::new(), 0),
        };
        let row = seeded.iter().find(|r| r.0 == table && r.1 == id);
        let filter = match filter_roll {
            0..=19 => Some(Filter::U(
                row.and_then(|r| r.2.clone())
                    .filter(|_| filter_roll < 15)
                    .unwrap_or_else(|| USERS[pick_user].to_string()),
            )),
            20..=34 => Some(Filter::B(
                row.and_then(|r| r.3)
                    .filter(|_| filter_roll < 30)
                    .unwrap_or(pick_bool),
            )),
            _ => None,
        };
        spell.filter = match filter {
            Some(Filter::U(_)) => filter_uuid,
            Some(Filter::B(_)) => filter_bool,
            None => Form::Native,
        };
        match &mut step.action {
            Action::Insert { spell: s, .. } | Action::Upsert { spell: s, .. } => {
                spell.filter = Form::Native;
                *s = spell;
            }
            Action::Update {
                spell: s,
                filter: f,
                ..
            } => {
                *s = Spell {
                    b: Form::Native,
                    d: Form::Native,
                    ..spell
                };
                *f = filter;
            }
            Action::Delete {
                spell: s,
                filter: f,
                ..
            } => {
                *s = Spell {
                    id: spell.id,
                    filter: spell.filter,
                    ..Spell::default()
                };
                *f = filter;
            }
            _ => {}
        }
    }
}
