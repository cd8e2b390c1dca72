//! Fuzzes the SQL front end: a statement as StartQuery takes it (any text of up to 10,000
//! characters), through the dialect's store quoting, parsing, the one-SELECT and table checks and
//! the Trino rewrites. It may refuse, with a message; it may not panic, and what it accepts reads
//! only stores: every table it names is a store the front end resolved or a `WITH` query.
#![no_main]

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use libfuzzer_sys::fuzz_target;
use sqlparser::ast::{Query, Visit, Visitor, visit_relations};
use traillake_sql::{InvalidStatement, prepare};

fuzz_target!(|input: &[u8]| {
    let Ok(statement) = std::str::from_utf8(input) else {
        return;
    };
    if statement.chars().count() > 10_000 {
        return;
    }
    let mut resolved = BTreeSet::new();
    let outcome = prepare::<InvalidStatement>(statement, |written| {
        let registered = format!("store {}", written.to_ascii_lowercase());
        resolved.insert(registered.clone());
        Ok(registered)
    });
    let prepared = match outcome {
        Ok(prepared) => prepared,
        Err(refused) => return assert!(!refused.0.is_empty(), "a refusal says why: {statement:?}"),
    };
    assert!(
        !prepared.stores.is_empty(),
        "an accepted query names a store: {statement:?}"
    );
    let mut with_names = WithNames::default();
    let _ = prepared.query.visit(&mut with_names);
    let _ = visit_relations(&prepared.query, |name| {
        let plain = name.0.len() == 1 && name.to_string().starts_with('"');
        let text = name
            .0
            .first()
            .and_then(|part| part.as_ident())
            .map(|ident| ident.value.clone())
            .unwrap_or_default();
        let known =
            (plain && resolved.contains(&text)) || with_names.0.contains(&name.to_string().to_ascii_lowercase());
        assert!(
            known,
            "{name} in the accepted query of {statement:?} is neither a store nor a WITH query"
        );
        ControlFlow::<()>::Continue(())
    });
});

/// The names of every `WITH` query of a query, lowercased.
#[derive(Default)]
struct WithNames(BTreeSet<String>);

impl Visitor for WithNames {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        for cte in query.with.iter().flat_map(|with| &with.cte_tables) {
            self.0.insert(cte.alias.name.to_string().to_ascii_lowercase());
        }
        ControlFlow::Continue(())
    }
}
