//! Laws of the language: printing a parsed policy and parsing it again gives
//! the same policy, and no input makes the parser panic.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use dnr_core::ast::*;
use dnr_core::Span;
use proptest::prelude::*;

/// A well-typed operand pair over the fields every generated entity has:
/// `n: int`, `s: str`, `u: uuid`, `b: bool`.
fn comparison() -> impl Strategy<Value = Expr> {
    let field = |name: &str| Operand::Field(name.to_string(), Span::default());
    let cmp = prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Ne),
        Just(CmpOp::Lt),
        Just(CmpOp::Le),
        Just(CmpOp::Gt),
        Just(CmpOp::Ge)
    ];
    let text = "[a-z' ]{0,6}";
    prop_oneof![
        (cmp.clone(), any::<i64>()).prop_map(move |(op, n)| Expr::Compare {
            lhs: field("n"),
            op,
            rhs: Operand::Literal(Literal::Int(n))
        }),
        (cmp.clone(), -1e6f64..1e6).prop_map(move |(op, x)| Expr::Compare {
            lhs: Operand::Literal(Literal::Float(x)),
            op,
            rhs: field("n")
        }),
        (cmp.clone(), text).prop_map(move |(op, s)| Expr::Compare {
            lhs: field("s"),
            op,
            rhs: Operand::Literal(Literal::Str(s))
        }),
        cmp.clone().prop_map(move |op| Expr::Compare {
            lhs: field("u"),
            op,
            rhs: Operand::CurrentUser
        }),
        any::<bool>().prop_map(move |b| Expr::Compare {
            lhs: field("b"),
            op: CmpOp::Eq,
            rhs: Operand::Literal(Literal::Bool(b))
        }),
        any::<bool>().prop_map(move |b| Expr::Compare {
            lhs: field("tenant_id"),
            op: if b { CmpOp::Eq } else { CmpOp::Ne },
            rhs: Operand::CurrentTenant
        }),
        (any::<bool>(), prop::collection::vec(any::<i64>(), 1..4)).prop_map(
            move |(negated, ns)| Expr::In {
                operand: field("n"),
                negated,
                list: ns.into_iter().map(Literal::Int).collect()
            }
        ),
        (
            any::<bool>(),
            prop_oneof![Just("n"), Just("s"), Just("u"), Just("b")]
        )
            .prop_map(move |(negated, f)| Expr::IsNull {
                operand: field(f),
                negated
            }),
    ]
}

fn condition() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Expr::Bool),
        Just(Expr::Authenticated),
        Just(Expr::Anonymous),
        "[a-z][a-z_]{0,6}".prop_map(Expr::Role),
        comparison(),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            (inner, prop_oneof![Just("id"), Just("u")]).prop_map(|(rest, this)| {
                Expr::Exists(Box::new(Exists {
                    entity: "Entity0".into(),
                    entity_span: Span::default(),
                    span: Span::default(),
                    condition: Expr::And(vec![
                        Expr::Compare {
                            lhs: Operand::Field("u".into(), Span::default()),
                            op: CmpOp::Eq,
                            rhs: Operand::This(this.into(), Span::default()),
                        },
                        rest,
                    ]),
                }))
            }),
        ]
    })
}

fn field(name: &str, ty: FieldType) -> Field {
    Field {
        name: name.into(),
        ty,
        primary_key: false,
        required: false,
        unique: false,
        default: None,
        span: Span::default(),
    }
}

fn entity(index: usize) -> impl Strategy<Value = Entity> {
    let op = prop_oneof![
        Just(Operation::Create),
        Just(Operation::Read),
        Just(Operation::Update),
        Just(Operation::Delete)
    ];
    let kind = prop_oneof![3 => Just(RuleKind::Permit), 1 => Just(RuleKind::Forbid)];
    let rules = prop::collection::vec((kind, op, condition()), 0..6);
    let tenant = prop_oneof![Just(EntityTenant::Default), Just(EntityTenant::None)];
    (rules, tenant, any::<bool>(), any::<bool>()).prop_map(
        move |(rules, tenant, explicit_table, pk)| {
            let mut id = field("id", FieldType::Uuid);
            id.primary_key = pk;
            id.required = !pk;
            let mut s = field("s", FieldType::Str(Some(40)));
            s.default = Some(Literal::Str("it's".into()));
            let mut rules: Vec<Rule> = rules
                .into_iter()
                .map(|(kind, op, condition)| Rule {
                    kind,
                    op,
                    condition,
                    span: Span::default(),
                })
                .collect();
            rules.sort_by_key(|r| r.kind == RuleKind::Forbid);
            // Every `exists` names Entity0, whose rules then must not (an
            // `exists` leading back to its own entity is an error).
            if index == 0 {
                for rule in &mut rules {
                    if !rule.condition.exists_clauses().is_empty() {
                        rule.condition = Expr::Bool(true);
                    }
                }
            }
            let name = format!("Entity{index}");
            Entity {
                table: if explicit_table {
                    format!("weird table {index}")
                } else {
                    format!("entity{index}")
                },
                table_explicit: explicit_table,
                table_span: Span::default(),
                name,
                tenant,
                fields: vec![
                    id,
                    field("n", FieldType::Int),
                    s,
                    field("u", FieldType::Uuid),
                    field("b", FieldType::Bool),
                    field("tenant_id", FieldType::Uuid),
                    field("state", FieldType::Enum(vec!["a".into(), "b c".into()])),
                ],
                rules,
                span: Span::default(),
            }
        },
    )
}

fn policy_set() -> impl Strategy<Value = PolicySet> {
    let mode = prop_oneof![
        Just(TenantMode::RowLevel),
        Just(TenantMode::None),
        Just(TenantMode::Schema)
    ];
    (mode, prop::collection::vec(0..1usize, 1..4)).prop_flat_map(|(mode, slots)| {
        let entities: Vec<_> = (0..slots.len()).map(entity).collect();
        entities.prop_map(move |entities| PolicySet {
            tenancy: Tenancy {
                mode,
                column: "tenant_id".into(),
                column_span: Span::default(),
            },
            entities,
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn print_then_parse_is_identity(set in policy_set()) {
        let printed = set.to_string();
        let reparsed = dnr_core::parse(&printed)
            .unwrap_or_else(|e| panic!("printed policy does not parse:\n{}\n{printed}", e.render(&printed, "printed.dnr")));
        prop_assert_eq!(&reparsed, &set, "printed:\n{}", printed);
    }

    #[test]
    fn parser_never_panics(source in "(entity [A-Z][a-z]{0,3}:\n|  [a-z_]{1,6}: [a-z()\\[\\],' =<>!0-9]{0,20}\n|    (read|write|delete): [a-z_ ()'=<>!0-9\\[\\],]{0,30}\n|tenancy:\n|\t|#[^\n]*\n){0,12}") {
        let _ = dnr_core::parse(&source);
    }
}

#[test]
fn examples_round_trip() {
    for file in ["tasks.dnr", "crm.dnr", "hostile.dnr", "teams.dnr"] {
        let path = format!("{}/../examples/{file}", env!("CARGO_MANIFEST_DIR"));
        let source = std::fs::read_to_string(path).unwrap();
        let set = dnr_core::parse(&source).unwrap();
        let printed = set.to_string();
        assert_eq!(
            dnr_core::parse(&printed).unwrap(),
            set,
            "{file} printed as:\n{printed}"
        );
    }
}
