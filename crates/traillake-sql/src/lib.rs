//! CloudTrail Lake's SQL dialect, on sqlparser: what users write is made into one checked `SELECT`
//! whose tables are the event data stores it names.
//!
//! - Unquoted hyphenated store IDs (`FROM 5e2676f8-9fce-46ef-8142-3e36a94e6691`) and ARNs are
//!   quoted before parsing, in table positions only (after `FROM`, `JOIN`, or a `,` of a `FROM`
//!   list), so that `5e2676f8` does not start a number ([`quote_store_references`]).
//! - One trailing `;` is allowed; anything but a single query is refused.
//! - Every table reference must be a store (or a `WITH` name); table functions are refused. The
//!   references are rewritten to the quoted store ID, which is the name the store is registered
//!   under ([`PreparedQuery::stores`]).
//! - Trino forms DataFusion spells otherwise are rewritten ([`TrinoForms`]): `max_by` / `min_by`,
//!   `regexp_replace` (all matches, and its two-argument form), casts of JSON, and `.field` after
//!   an expression (`element_at(resources, 1).arn`).
//! - Result column keys are taken from the select list as written ([`column_keys`]).
//!
//! Errors are [`InvalidStatement`] with a message that says what and where.
//!
//! A crate of its own, on sqlparser alone (the version DataFusion 55 parses with, so that
//! [`PreparedQuery::query`] is the AST DataFusion plans), so that the fuzz target of the SQL front
//! end in `fuzz/` builds without DataFusion. `traillake-query` re-exports it as
//! `traillake_query::dialect`.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    AccessExpr, DataType, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName,
    ObjectNamePart, OneOrManyWithParens, Query, SelectItem, SetExpr, Statement, Subscript, TableFactor, Value,
    VisitMut, VisitorMut,
};
use sqlparser::dialect::{Dialect, GenericDialect};
use sqlparser::parser::{Parser, ParserError};

/// A statement traillake does not run, with what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidStatement(pub String);

/// sqlparser's generic dialect with Trino's lambdas (`x -> x.arn`), and a bound on the parser's
/// work.
///
/// sqlparser 0.62 backtracks: on some statements that do not parse it tries each alternative again
/// at every level of nesting, so the work doubles per level (`a.b.c[a.b.c[...` of 300 characters
/// takes minutes). The dialect counts the parser's expression steps (each operand parsed and each
/// operator looked at); past [`MAX_PARSE_STEPS`] it stops the parse with sqlparser's recursion-limit
/// error, the one error its backtracking does not swallow.
#[derive(Debug, Default)]
pub struct LakeDialect {
    generic: GenericDialect,
    steps: Cell<u32>,
}

/// The expression steps a statement may take to parse: the largest of CloudTrail Lake's sample
/// queries takes 193, and statements of 10,000 characters (the longest StartQuery takes) of long
/// `IN` lists, `OR` chains, `CASE`s, sums or lambdas take 1,600 to 8,000.
pub const MAX_PARSE_STEPS: u32 = 100_000;

impl LakeDialect {
    /// Counts one step of the parser; past the bound, the error that ends the parse.
    fn step(&self) -> Option<Result<Expr, ParserError>> {
        let steps = self.steps.get() + 1;
        self.steps.set(steps);
        (steps > MAX_PARSE_STEPS).then_some(Err(ParserError::RecursionLimitExceeded))
    }

    /// Whether the parse was stopped for taking more than [`MAX_PARSE_STEPS`].
    fn stopped(&self) -> bool {
        self.steps.get() > MAX_PARSE_STEPS
    }
}

impl Dialect for LakeDialect {
    fn parse_prefix(&self, _parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        self.step()
    }

    fn get_next_precedence(&self, _parser: &Parser) -> Option<Result<u8, ParserError>> {
        self.step().map(|stopped| stopped.map(|_| 0))
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        self.generic.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        self.generic.is_identifier_part(ch)
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '"'
    }

    fn supports_lambda_functions(&self) -> bool {
        true
    }

    fn supports_filter_during_aggregation(&self) -> bool {
        true
    }

    fn supports_group_by_expr(&self) -> bool {
        true
    }
}

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
    let mut tables = TableReferences {
        ctes: BTreeSet::new(),
        stores: Vec::new(),
        resolve: &mut resolve,
    };
    if let ControlFlow::Break(error) = query.visit(&mut tables) {
        return Err(error);
    }
    let keys = column_keys(&query);
    name_repeated_select_items(&mut query);
    let mut forms = TrinoForms::default();
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

/// Gives the unaliased items of the outer select list that repeat an earlier one (`SELECT
/// eventName, eventName`, or two scalar sub-queries) the alias `_colN`, since DataFusion refuses
/// two output columns of one name where Trino allows them; their result keys were taken before.
fn name_repeated_select_items(query: &mut Query) {
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

/// Returns the first words of a statement that is not a query, for the error message.
fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

struct TableReferences<'a, F> {
    ctes: BTreeSet<String>,
    stores: Vec<String>,
    resolve: &'a mut F,
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

/// Rewrites the Trino forms that DataFusion spells otherwise into DataFusion's, after the rest of
/// an expression was visited (so nested forms are rewritten first). It knows the parameters of the
/// lambdas it is inside, since `r.type` is a field of the parameter `r` there, not a column.
#[derive(Default)]
struct TrinoForms {
    lambda_parameters: Vec<Vec<String>>,
    lambdas: usize,
}

/// Functions whose result is JSON text, so that `CAST(... AS VARCHAR)` of it unwraps a JSON string.
const JSON_FUNCTIONS: &[&str] = &["json_extract", "json_parse", "json_array_get", "json_format"];

impl VisitorMut for TrinoForms {
    type Break = InvalidStatement;

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<InvalidStatement> {
        if let Expr::Lambda(lambda) = expr {
            let names = match &lambda.params {
                OneOrManyWithParens::One(param) => vec![param.name.value.to_ascii_lowercase()],
                OneOrManyWithParens::Many(params) => params.iter().map(|p| p.name.value.to_ascii_lowercase()).collect(),
            };
            self.lambda_parameters.push(names);
            self.lambdas += 1;
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<InvalidStatement> {
        let rewritten = match expr {
            Expr::Lambda(_) => {
                self.lambda_parameters.pop();
                None
            }
            Expr::CompoundIdentifier(parts) if !self.is_lambda_parameter(&parts[0]) => {
                for part in parts.iter_mut() {
                    if let Some(published) = published_name(&part.value) {
                        *part = Ident::new(published);
                    }
                }
                None
            }
            Expr::CompoundIdentifier(parts) => {
                let fields: String = parts[1..]
                    .iter()
                    .map(|part| {
                        let field = if part.quote_style.is_some() {
                            part.value.clone()
                        } else {
                            part.value.to_ascii_lowercase()
                        };
                        format!("['{}']", field.replace('\'', "''"))
                    })
                    .collect();
                Some(format!("{}{fields}", parts[0]))
            }
            Expr::Function(function) => rewrite_function(function),
            Expr::Cast {
                expr: inner, data_type, ..
            } => rewrite_cast(inner, data_type),
            Expr::CompoundFieldAccess { access_chain, .. } => {
                for access in access_chain.iter_mut() {
                    if let AccessExpr::Dot(Expr::Identifier(ident)) = access {
                        let field = if ident.quote_style.is_some() {
                            ident.value.clone()
                        } else {
                            ident.value.to_ascii_lowercase()
                        };
                        *access = AccessExpr::Subscript(Subscript::Index {
                            index: Expr::value(Value::SingleQuotedString(field)),
                        });
                    }
                }
                None
            }
            _ => None,
        };
        let Some(text) = rewritten else {
            return ControlFlow::Continue(());
        };
        match Parser::new(&LakeDialect::default())
            .try_with_sql(&text)
            .and_then(|mut parser| parser.parse_expr())
        {
            Ok(replacement) => {
                *expr = replacement;
                ControlFlow::Continue(())
            }
            Err(error) => ControlFlow::Break(InvalidStatement(format!("cannot rewrite {text}: {error}"))),
        }
    }
}

/// Returns the column a misspelling in the published schemas stands for: the docs spell
/// `useridentity.inscopeof.credentialsissuedto` as `credentiaisissuedto`, and
/// `eventdata.errormessage` as `errormssage`.
fn published_name(name: &str) -> Option<&'static str> {
    MISSPELLED_COLUMNS
        .iter()
        .find(|(misspelled, _)| name.eq_ignore_ascii_case(misspelled))
        .map(|(_, column)| *column)
}

/// The published schemas' misspellings, lowercase, and the columns they stand for.
const MISSPELLED_COLUMNS: [(&str, &str); 2] = [
    ("credentiaisissuedto", "credentialsissuedto"),
    ("errormssage", "errormessage"),
];

impl TrinoForms {
    fn is_lambda_parameter(&self, ident: &Ident) -> bool {
        let name = ident.value.to_ascii_lowercase();
        self.lambda_parameters.iter().any(|names| names.contains(&name))
    }
}

/// Returns the plain arguments of a call, or `None` if it has clauses, named arguments or `*`.
fn plain_args(function: &Function) -> Option<Vec<&Expr>> {
    let FunctionArguments::List(list) = &function.args else {
        return None;
    };
    if !list.clauses.is_empty() || list.duplicate_treatment.is_some() || function.over.is_some() {
        return None;
    }
    list.args
        .iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr),
            _ => None,
        })
        .collect()
}

fn function_name(function: &Function) -> String {
    function.name.to_string().to_ascii_lowercase()
}

fn rewrite_function(function: &Function) -> Option<String> {
    let name = function_name(function);
    let args = plain_args(function)?;
    match (name.as_str(), args.as_slice()) {
        ("max_by", [value, key]) => Some(format!("first_value({value} ORDER BY {key} DESC NULLS LAST)")),
        ("min_by", [value, key]) => Some(format!("first_value({value} ORDER BY {key} ASC NULLS LAST)")),
        ("regexp_replace", [text, pattern]) => Some(format!("regexp_replace({text}, {pattern}, '', 'g')")),
        ("regexp_replace", [text, pattern, replacement]) => {
            Some(format!("regexp_replace({text}, {pattern}, {replacement}, 'g')"))
        }
        _ => None,
    }
}

fn rewrite_cast(inner: &Expr, data_type: &DataType) -> Option<String> {
    let target: String = data_type
        .to_string()
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let json_inner = matches!(inner, Expr::Function(f) if JSON_FUNCTIONS.contains(&function_name(f).as_str()));
    match target.as_str() {
        "map(varchar,json)" => Some(format!("json_to_map({inner})")),
        "array(json)" => Some(format!("json_to_array({inner})")),
        "varchar" if json_inner => Some(format!("json_to_varchar({inner})")),
        _ => None,
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

/// Quotes unquoted hyphenated store IDs (`[A-Za-z0-9_]+(-[A-Za-z0-9_]+)+`) and ARNs (`arn:...`)
/// that stand where a table name belongs, leaving strings, quoted names and comments alone.
pub fn quote_store_references(sql: &str) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    // Whether the clause open at each parenthesis depth is a FROM list.
    let mut in_from = vec![false];
    let mut expect_table = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let rest = &sql[i..];
        // Skip what cannot hold a table name: strings, quoted names, comments.
        let skipped = if c == b'\'' || c == b'"' {
            Some(quoted_len(rest, c))
        } else if rest.starts_with("--") {
            Some(rest.find('\n').unwrap_or(rest.len()))
        } else if rest.starts_with("/*") {
            Some(rest.find("*/").map_or(rest.len(), |end| end + 2))
        } else {
            None
        };
        if let Some(len) = skipped {
            if c == b'"' {
                expect_table = false;
            }
            out.push_str(&rest[..len]);
            i += len;
            continue;
        }
        if c.is_ascii_whitespace() {
            out.push(c as char);
            i += 1;
            continue;
        }
        if expect_table {
            expect_table = false;
            let len = store_reference_len(rest);
            if len > 0 {
                out.push('"');
                out.push_str(&rest[..len]);
                out.push('"');
                i += len;
                continue;
            }
        }
        match c {
            b'(' => in_from.push(false),
            b')' if in_from.len() > 1 => {
                in_from.pop();
            }
            b',' => expect_table = *in_from.last().expect("depth 0 is never popped"),
            _ => {}
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let len = rest
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            let word = rest[..len].to_ascii_uppercase();
            let depth = in_from.last_mut().expect("depth 0 is never popped");
            match word.as_str() {
                "FROM" => {
                    *depth = true;
                    expect_table = true;
                }
                "JOIN" => expect_table = true,
                "WHERE" | "GROUP" | "ORDER" | "HAVING" | "LIMIT" | "UNION" | "EXCEPT" | "INTERSECT" | "SELECT"
                | "WINDOW" | "OFFSET" | "FETCH" => *depth = false,
                _ => {}
            }
            out.push_str(&rest[..len]);
            i += len;
            continue;
        }
        let ch = rest.chars().next().expect("i is at a character boundary");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Returns the length of a quoted string or name starting at `text`, doubled quotes included.
fn quoted_len(text: &str, quote: u8) -> usize {
    let bytes = text.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// Returns the length of an unquoted hyphenated ID or ARN at the start of `text`, or 0.
fn store_reference_len(text: &str) -> usize {
    let is_word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    if text.len() > 4 && text.get(..4).is_some_and(|start| start.eq_ignore_ascii_case("arn:")) {
        return text
            .bytes()
            .take_while(|b| is_word(b) || matches!(b, b':' | b'/' | b'-' | b'.'))
            .count();
    }
    let len = text.bytes().take_while(|b| is_word(b) || *b == b'-').count();
    let candidate = &text[..len];
    let hyphenated = candidate.contains('-')
        && !candidate.starts_with('-')
        && !candidate.ends_with('-')
        && !candidate.contains("--");
    if hyphenated { len } else { 0 }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_hyphenated_ids_in_table_positions_only() {
        assert_eq!(
            quote_store_references("SELECT a-b FROM 5e2676f8-9fce-46ef-8142-3e36a94e6691 WHERE x = 'FROM a-b'"),
            "SELECT a-b FROM \"5e2676f8-9fce-46ef-8142-3e36a94e6691\" WHERE x = 'FROM a-b'"
        );
        assert_eq!(
            quote_store_references("select * from eds-a as x join eds-b y on x.id = y.id, eds-c /* from x-y */"),
            "select * from \"eds-a\" as x join \"eds-b\" y on x.id = y.id, \"eds-c\" /* from x-y */"
        );
        assert_eq!(
            quote_store_references("SELECT f(a, b-c) FROM (SELECT x FROM e-1) WHERE y IN (1, 2-1)"),
            "SELECT f(a, b-c) FROM (SELECT x FROM \"e-1\") WHERE y IN (1, 2-1)"
        );
        assert_eq!(
            quote_store_references("SELECT 1 FROM arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/ab-cd x"),
            "SELECT 1 FROM \"arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/ab-cd\" x"
        );
        assert_eq!(
            quote_store_references("SELECT 'é' FROM \"x-y\" -- é"),
            "SELECT 'é' FROM \"x-y\" -- é"
        );
        assert_eq!(quote_store_references("SELECT é FROM t"), "SELECT é FROM t");
        // Found by the fuzz target: a name whose fourth byte is inside a character.
        assert_eq!(
            quote_store_references("SELECT 1 FROM ar\u{65e5}x"),
            "SELECT 1 FROM ar\u{65e5}x"
        );
    }

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
