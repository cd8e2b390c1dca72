//! The result columns of a query as Lake names them: the keys of GetQueryResults' rows, and the
//! aliases that let DataFusion output two columns Trino would name alike.

use std::collections::BTreeSet;

use sqlparser::ast::{Expr, Ident, Query, SelectItem, SetExpr};

use crate::trino::MISSPELLED_COLUMNS;

/// Returns the result column keys of a query's select list as Lake names them: an alias as
/// written, a column as written, the last part of a dotted path, and `_colN` (N from 0) for any
/// other expression. `None` stands for a wildcard, whose columns keep the stores' column names.
pub fn column_keys(query: &Query) -> Vec<Option<String>> {
    let mut body = query.body.as_ref();
    loop {
        match body {
            SetExpr::SetOperation { left, .. } => body = left.as_ref(),
            SetExpr::Query(inner) => body = inner.body.as_ref(),
            _ => break,
        }
    }
    let SetExpr::Select(select) = body else {
        return Vec::new();
    };
    select
        .projection
        .iter()
        .enumerate()
        .map(|(position, item)| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            SelectItem::UnnamedExpr(Expr::Identifier(ident)) => Some(ident.value.clone()),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => parts.last().map(|ident| ident.value.clone()),
            SelectItem::UnnamedExpr(_) => Some(format!("_col{position}")),
            _ => None,
        })
        .collect()
}

/// Gives the unaliased items of the outer select list that repeat an earlier one (`SELECT
/// eventName, eventName`, or two scalar sub-queries) the alias `_colN`, since DataFusion refuses
/// two output columns of one name where Trino allows them; their result keys were taken before.
pub(crate) fn name_repeated_select_items(query: &mut Query) {
    let mut body = query.body.as_mut();
    loop {
        match body {
            SetExpr::SetOperation { left, .. } => body = left.as_mut(),
            SetExpr::Query(inner) => body = inner.body.as_mut(),
            _ => break,
        }
    }
    let SetExpr::Select(select) = body else { return };
    let mut seen = BTreeSet::new();
    for (position, item) in select.projection.iter_mut().enumerate() {
        let SelectItem::UnnamedExpr(expr) = item else { continue };
        // DataFusion names every scalar sub-query alike.
        let text = match expr {
            Expr::Subquery(_) => "(<subquery>)".to_string(),
            _ => published_text(&expr.to_string()),
        };
        if !seen.insert(text) {
            let expr = expr.clone();
            *item = SelectItem::ExprWithAlias {
                expr,
                alias: Ident::with_quote('"', format!("_col{position}")),
            };
        }
    }
}

/// Returns an expression's text as DataFusion names it, for comparing select items.
fn published_text(text: &str) -> String {
    let mut text = text.to_ascii_lowercase();
    for (misspelled, column) in MISSPELLED_COLUMNS {
        text = text.replace(misspelled, column);
    }
    text
}
