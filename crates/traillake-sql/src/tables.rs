//! The table references of a query: each must be an event data store (or a `WITH` name), and is
//! rewritten to the name the store is registered under; table functions and `SELECT ... INTO`
//! are refused.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{Ident, ObjectName, ObjectNamePart, Query, SetExpr, TableFactor, VisitorMut};

use crate::InvalidStatement;

/// Collects the stores a query names and rewrites each reference through `resolve`.
pub(crate) struct TableReferences<'a, F> {
    pub(crate) ctes: BTreeSet<String>,
    pub(crate) stores: Vec<String>,
    pub(crate) resolve: &'a mut F,
}

impl<E: From<InvalidStatement>, F: FnMut(&str) -> Result<String, E>> VisitorMut for TableReferences<'_, F> {
    type Break = E;

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<E> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.to_ascii_lowercase());
            }
        }
        if let SetExpr::Select(select) = query.body.as_ref()
            && select.into.is_some()
        {
            return ControlFlow::Break(InvalidStatement("SELECT ... INTO is not allowed".to_string()).into());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<E> {
        let refusal = match factor {
            TableFactor::Table {
                name, args: Some(_), ..
            } if name.to_string().eq_ignore_ascii_case("unnest") => {
                "UNNEST in FROM is not supported yet; select unnest(array) in the select list instead".to_string()
            }
            TableFactor::Table {
                name, args: Some(_), ..
            } => format!("table functions are not allowed: {name}(...) in FROM"),
            TableFactor::Table { name, .. } => return self.resolve_table(name),
            TableFactor::TableFunction { expr, .. } => {
                format!("table functions are not allowed: TABLE({expr}) in FROM")
            }
            TableFactor::Function { name, .. } => format!("table functions are not allowed: {name}(...) in FROM"),
            _ => return ControlFlow::Continue(()),
        };
        ControlFlow::Break(InvalidStatement(refusal).into())
    }
}

impl<E, F: FnMut(&str) -> Result<String, E>> TableReferences<'_, F> {
    /// Rewrites a table name to the name its store is registered under, unless it names a `WITH`
    /// query.
    fn resolve_table(&mut self, name: &mut ObjectName) -> ControlFlow<E> {
        let written = object_name_text(name);
        if name.0.len() == 1 && self.ctes.contains(&written.to_ascii_lowercase()) {
            return ControlFlow::Continue(());
        }
        match (self.resolve)(&written) {
            Ok(registered) => {
                *name = ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote('"', registered))]);
                self.stores.push(written);
                ControlFlow::Continue(())
            }
            Err(error) => ControlFlow::Break(error),
        }
    }
}

/// Returns a table name as written, its parts joined by `.` and without quotes.
fn object_name_text(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => ident.value.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}
