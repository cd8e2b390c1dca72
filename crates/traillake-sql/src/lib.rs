//! CloudTrail Lake's SQL dialect, on sqlparser: what users write is made into one checked `SELECT`
//! whose tables are the event data stores it names.
//!
//! - Unquoted hyphenated store IDs (`FROM 5e2676f8-9fce-46ef-8142-3e36a94e6691`) and ARNs are
//!   quoted before parsing, in table positions only (after `FROM`, `JOIN`, or a `,` of a `FROM`
//!   list), so that `5e2676f8` does not start a number ([`store_ids`]).
//! - One trailing `;` is allowed; anything but a single query is refused.
//! - Every table reference must be a store (or a `WITH` name); table functions are refused. The
//!   references are rewritten to the quoted store ID, which is the name the store is registered
//!   under ([`PreparedQuery::stores`], [`tables`]).
//! - Trino forms DataFusion spells otherwise are rewritten ([`trino`]): `max_by` / `min_by`,
//!   `regexp_replace` (all matches, and its two-argument form), casts of JSON, and `.field` after
//!   an expression (`element_at(resources, 1).arn`).
//! - Result column keys are taken from the select list as written ([`columns`]).
//! - Statements are parsed in [`LakeDialect`], whose work is bounded ([`dialect`]).
//! - Query parameters fill a statement's `?` placeholders as literals ([`fill_placeholders`]).
//!
//! Errors are [`InvalidStatement`] with a message that says what and where.
//!
//! A crate of its own, on sqlparser alone (the version DataFusion 55 parses with, so that
//! [`PreparedQuery::query`] is the AST DataFusion plans), so that the fuzz target of the SQL front
//! end in `fuzz/` builds without DataFusion. `traillake-query` re-exports it as
//! `traillake_query::dialect`.

mod columns;
mod dialect;
mod placeholders;
mod store_ids;
mod tables;
mod trino;

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{Query, Statement, VisitMut};
use sqlparser::parser::{Parser, ParserError};

pub use columns::column_keys;
pub use dialect::{LakeDialect, MAX_PARSE_STEPS};
pub use placeholders::{count_placeholders, fill_placeholders};
pub use store_ids::quote_store_references;

/// A statement traillake does not run, with what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidStatement(pub String);

/// The result of preparing a statement.
pub type Result<T, E = InvalidStatement> = std::result::Result<T, E>;

/// A statement that parsed as one query, with its table references resolved to store references.
#[derive(Debug, Clone)]
pub struct PreparedQuery {
    /// The query; every store reference is rewritten to the quoted name the store is registered
    /// under, which [`PreparedQuery::stores`] lists.
    pub query: Query,
    /// The stores the query names, each as written (an ID or an ARN), in order of appearance.
    pub stores: Vec<String>,
    /// Whether the query has lambdas (`x -> ...`).
    pub has_lambdas: bool,
    /// The result column keys of the select list as written ([`column_keys`]).
    pub column_keys: Vec<Option<String>>,
}

/// Parses a statement of the dialect into one query and collects the stores it names; `resolve`
/// turns each store reference as written into the name to register the store under.
pub fn prepare<E: From<InvalidStatement>>(
    sql: &str,
    mut resolve: impl FnMut(&str) -> Result<String, E>,
) -> Result<PreparedQuery, E> {
    let quoted = quote_store_references(sql);
    let dialect = LakeDialect::default();
    let statements = Parser::new(&dialect)
        .try_with_sql(&quoted)
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|error| {
            InvalidStatement(match error {
                _ if dialect.stopped() => format!(
                    "the statement is too complex to parse: it takes more than {MAX_PARSE_STEPS} steps; nest fewer brackets, parentheses and dotted names"
                ),
                ParserError::RecursionLimitExceeded => {
                    "the statement is nested too deeply to parse; nest fewer brackets, parentheses and sub-queries".to_string()
                }
                error => format!("the statement does not parse: {error}"),
            })
        })?;
    let mut statements = statements.into_iter();
    let (Some(statement), None) = (statements.next(), statements.next()) else {
        return Err(InvalidStatement("send exactly one SELECT statement".to_string()).into());
    };
    let Statement::Query(mut query) = statement else {
        let kind = statement_kind(&statement);
        return Err(InvalidStatement(format!("only SELECT statements are allowed, not {kind}")).into());
    };
    let mut tables = tables::TableReferences {
        ctes: BTreeSet::new(),
        stores: Vec::new(),
        resolve: &mut resolve,
    };
    if let ControlFlow::Break(error) = query.visit(&mut tables) {
        return Err(error);
    }
    let keys = column_keys(&query);
    columns::name_repeated_select_items(&mut query);
    let mut forms = trino::TrinoForms::default();
    if let ControlFlow::Break(error) = query.visit(&mut forms) {
        return Err(error.into());
    }
    let stores = tables.stores;
    if stores.is_empty() {
        return Err(InvalidStatement("the query names no event data store in FROM".to_string()).into());
    }
    Ok(PreparedQuery {
        query: *query,
        stores,
        has_lambdas: forms.lambdas > 0,
        column_keys: keys,
    })
}

/// Returns the first words of a statement that is not a query, for the error message.
fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stores(sql: &str) -> Result<PreparedQuery, InvalidStatement> {
        prepare(sql, |written| Ok(written.to_ascii_lowercase()))
    }

    #[test]
    fn accepts_one_query_and_rewrites_its_stores() {
        let prepared = stores("WITH w AS (SELECT 1 FROM EDS-1) SELECT * FROM w UNION SELECT 1 FROM eds-2;").unwrap();
        assert_eq!(prepared.stores, vec!["EDS-1", "eds-2"]);
        assert!(
            prepared.query.to_string().contains("FROM \"eds-1\""),
            "{}",
            prepared.query
        );
    }

    #[test]
    fn refuses_what_is_not_one_select_over_stores() {
        for (sql, message) in [
            ("DROP TABLE x", "only SELECT statements are allowed, not DROP TABLE"),
            ("SELECT 1 FROM a; SELECT 2 FROM b", "send exactly one SELECT statement"),
            ("SELECT 1", "the query names no event data store in FROM"),
            (
                "SELECT * FROM generate_series(1, 3)",
                "table functions are not allowed: generate_series(...) in FROM",
            ),
            (
                "SELECT eventName FROM eds WHERE eventNameORDER BY x",
                "the statement does not parse",
            ),
        ] {
            let error = stores(sql).unwrap_err();
            assert!(error.to_string().starts_with(message), "{sql}: {error}");
        }
    }

    /// Statements on which sqlparser's backtracking doubles its work per level of nesting: without
    /// the bound on steps each takes from seconds to hours; with it, each is refused.
    #[test]
    fn refuses_statements_too_complex_to_parse() {
        let found_by_fuzzing = "SELECT ens, filter(res.en.batch_sVesnutafusion.execution.batch_sWITHn[EesoUion.batchsW"
            .to_string()
            + &"esnutafusion.execution.batch_sWITHnSEesoUion.batch_stch_sVesnutafusion.execution.batch_sWITHn[Eeso"
                .repeat(6)
            + "Uion.batch_WITHnSEesoUrces) > 1";
        for sql in [
            format!("SELECT {}1 FROM eds", "a.b.c[".repeat(12)),
            format!("SELECT {}1 FROM eds", "CAST(".repeat(24)),
            format!("SELECT {}1 FROM eds", "ARRAY[".repeat(24)),
            found_by_fuzzing,
        ] {
            let error = stores(&sql).unwrap_err();
            assert!(
                error.to_string().starts_with("the statement is too complex to parse"),
                "{sql}: {error}"
            );
        }
        // A statement of CloudTrail Lake's longest (10,000 characters) that parses in one pass.
        let long_sum = "SELECT ".to_string() + &vec!["userIdentity.sessionContext.x[1]"; 300].join(" + ") + " FROM eds";
        stores(&long_sum).unwrap();
    }

    #[test]
    fn names_result_columns_as_lake_does() {
        let prepared = stores("SELECT eventName, userIdentity.arn, count(*) AS n, count(*), * FROM eds").unwrap();
        assert_eq!(
            column_keys(&prepared.query),
            vec![
                Some("eventName".into()),
                Some("arn".into()),
                Some("n".into()),
                Some("_col3".into()),
                None
            ]
        );
    }
}
