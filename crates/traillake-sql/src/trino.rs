//! The Trino forms DataFusion spells otherwise, rewritten into DataFusion's as expressions (never
//! as SQL text parsed again, so no value is quoted by hand):
//!
//! - `max_by(v, k)` / `min_by(v, k)`: `first_value(v ORDER BY k DESC|ASC NULLS LAST)`;
//! - `regexp_replace(s, p[, r])`: every match replaced (`'g'`), `''` when `r` is left out;
//! - `CAST(x AS MAP(VARCHAR, JSON))`, `CAST(x AS ARRAY(JSON))`, and `CAST(json AS VARCHAR)` of a
//!   JSON function's result: `json_to_map`, `json_to_array`, `json_to_varchar`;
//! - `.field` after an expression (`element_at(resources, 1).arn`) and on a lambda's parameter
//!   (`r -> r.type`): a subscript by the field's name;
//! - the published schemas' misspelled column names: the columns they stand for.

use std::ops::ControlFlow;

use sqlparser::ast::{
    AccessExpr, DataType, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArgumentList,
    FunctionArguments, Ident, ObjectName, OneOrManyWithParens, OrderByExpr, OrderByOptions, Subscript, Value,
    VisitorMut,
};

use crate::InvalidStatement;

/// Rewrites the Trino forms after the rest of an expression was visited (so nested forms are
/// rewritten first). It knows the parameters of the lambdas it is inside, since `r.type` is a
/// field of the parameter `r` there, not a column.
#[derive(Default)]
pub(crate) struct TrinoForms {
    lambda_parameters: Vec<Vec<String>>,
    /// How many lambdas the query has.
    pub(crate) lambdas: usize,
}

/// Functions whose result is JSON text, so that `CAST(... AS VARCHAR)` of it unwraps a JSON string.
const JSON_FUNCTIONS: &[&str] = &["json_extract", "json_parse", "json_array_get", "json_format"];

/// The published schemas' misspellings, lowercase, and the columns they stand for: the docs spell
/// `useridentity.inscopeof.credentialsissuedto` as `credentiaisissuedto`, and
/// `eventdata.errormessage` as `errormssage`.
pub(crate) const MISSPELLED_COLUMNS: [(&str, &str); 2] = [
    ("credentiaisissuedto", "credentialsissuedto"),
    ("errormssage", "errormessage"),
];

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
        let replacement = match expr {
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
            Expr::CompoundIdentifier(parts) => Some(Expr::CompoundFieldAccess {
                root: Box::new(Expr::Identifier(parts[0].clone())),
                access_chain: parts[1..].iter().map(field_subscript).collect(),
            }),
            Expr::Function(function) => rewrite_function(function),
            Expr::Cast {
                expr: inner, data_type, ..
            } => rewrite_cast(inner, data_type),
            Expr::CompoundFieldAccess { access_chain, .. } => {
                for access in access_chain.iter_mut() {
                    if let AccessExpr::Dot(Expr::Identifier(ident)) = access {
                        *access = field_subscript(ident);
                    }
                }
                None
            }
            _ => None,
        };
        if let Some(replacement) = replacement {
            *expr = replacement;
        }
        ControlFlow::Continue(())
    }
}

impl TrinoForms {
    fn is_lambda_parameter(&self, ident: &Ident) -> bool {
        let name = ident.value.to_ascii_lowercase();
        self.lambda_parameters.iter().any(|names| names.contains(&name))
    }
}

/// Returns `['field']` for `.field`: the name as written when quoted, lowercase otherwise.
fn field_subscript(field: &Ident) -> AccessExpr {
    let name = if field.quote_style.is_some() {
        field.value.clone()
    } else {
        field.value.to_ascii_lowercase()
    };
    AccessExpr::Subscript(Subscript::Index {
        index: Expr::value(Value::SingleQuotedString(name)),
    })
}

/// Returns the column a misspelling in the published schemas stands for.
fn published_name(name: &str) -> Option<&'static str> {
    MISSPELLED_COLUMNS
        .iter()
        .find(|(misspelled, _)| name.eq_ignore_ascii_case(misspelled))
        .map(|(_, column)| *column)
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

fn unnamed(expr: Expr) -> FunctionArg {
    FunctionArg::Unnamed(FunctionArgExpr::Expr(expr))
}

fn text(value: &str) -> Expr {
    Expr::value(Value::SingleQuotedString(value.to_string()))
}

/// Returns the call `name(args)`, or `name(args ORDER BY ...)` with `clauses`, keeping what else
/// `like` has (FILTER, null treatment).
fn call(like: Option<&Function>, name: &str, args: Vec<Expr>, clauses: Vec<FunctionArgumentClause>) -> Expr {
    let arguments = FunctionArguments::List(FunctionArgumentList {
        duplicate_treatment: None,
        args: args.into_iter().map(unnamed).collect(),
        clauses,
    });
    let name = ObjectName::from(vec![Ident::new(name)]);
    let function = match like {
        Some(like) => Function {
            name,
            args: arguments,
            ..like.clone()
        },
        None => Function {
            name,
            uses_odbc_syntax: false,
            parameters: FunctionArguments::None,
            args: arguments,
            filter: None,
            null_treatment: None,
            over: None,
            within_group: Vec::new(),
        },
    };
    Expr::Function(function)
}

fn rewrite_function(function: &Function) -> Option<Expr> {
    let name = function_name(function);
    let args = plain_args(function)?;
    let first_by = |value: &Expr, key: &Expr, ascending: bool| {
        let order = OrderByExpr {
            expr: key.clone(),
            options: OrderByOptions {
                asc: Some(ascending),
                nulls_first: Some(false),
            },
            with_fill: None,
        };
        call(
            Some(function),
            "first_value",
            vec![value.clone()],
            vec![FunctionArgumentClause::OrderBy(vec![order])],
        )
    };
    match (name.as_str(), args.as_slice()) {
        ("max_by", [value, key]) => Some(first_by(value, key, false)),
        ("min_by", [value, key]) => Some(first_by(value, key, true)),
        ("regexp_replace", [subject, pattern]) => Some(call(
            Some(function),
            "regexp_replace",
            vec![(*subject).clone(), (*pattern).clone(), text(""), text("g")],
            Vec::new(),
        )),
        ("regexp_replace", [subject, pattern, replacement]) => Some(call(
            Some(function),
            "regexp_replace",
            vec![
                (*subject).clone(),
                (*pattern).clone(),
                (*replacement).clone(),
                text("g"),
            ],
            Vec::new(),
        )),
        _ => None,
    }
}

fn rewrite_cast(inner: &Expr, data_type: &DataType) -> Option<Expr> {
    let target: String = data_type
        .to_string()
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let json_inner = matches!(inner, Expr::Function(f) if JSON_FUNCTIONS.contains(&function_name(f).as_str()));
    let function = match target.as_str() {
        "map(varchar,json)" => "json_to_map",
        "array(json)" => "json_to_array",
        "varchar" if json_inner => "json_to_varchar",
        _ => return None,
    };
    Some(call(None, function, vec![inner.clone()], Vec::new()))
}

#[cfg(test)]
mod tests {
    use sqlparser::ast::VisitMut as _;
    use sqlparser::parser::Parser;

    use super::*;
    use crate::LakeDialect;

    fn expr(sql: &str) -> Expr {
        Parser::new(&LakeDialect::default())
            .try_with_sql(sql)
            .and_then(|mut parser| parser.parse_expr())
            .unwrap()
    }

    fn rewritten(sql: &str) -> Expr {
        let mut expr = expr(sql);
        let _ = expr.visit(&mut TrinoForms::default());
        expr
    }

    /// Each rewrite builds the expression that its DataFusion spelling parses to, with values as
    /// values: a quote in a field name needs no escaping.
    #[test]
    fn builds_what_the_datafusion_spelling_parses_to() {
        for (trino, datafusion) in [
            (
                "max_by(eventName, eventTime)",
                "first_value(eventName ORDER BY eventTime DESC NULLS LAST)",
            ),
            (
                "min_by(eventName, eventTime)",
                "first_value(eventName ORDER BY eventTime ASC NULLS LAST)",
            ),
            ("regexp_replace(a, 'x')", "regexp_replace(a, 'x', '', 'g')"),
            ("regexp_replace(a, 'x', 'y')", "regexp_replace(a, 'x', 'y', 'g')"),
            (
                "CAST(json_parse(a) AS MAP(VARCHAR, JSON))",
                "json_to_map(json_parse(a))",
            ),
            (
                "CAST(json_extract(a, '$.b') AS VARCHAR)",
                "json_to_varchar(json_extract(a, '$.b'))",
            ),
            ("CAST(a AS VARCHAR)", "CAST(a AS VARCHAR)"),
            ("element_at(resources, 1).ARN", "element_at(resources, 1)['arn']"),
            (
                "transform(resources, r -> r.\"Type\".x)",
                "transform(resources, r -> r['Type']['x'])",
            ),
            (
                "transform(resources, r -> r.\"it's\")",
                "transform(resources, r -> r['it''s'])",
            ),
            (
                "userIdentity.inScopeOf.credentiaIsIssuedTo",
                "userIdentity.inScopeOf.credentialsissuedto",
            ),
        ] {
            assert_eq!(rewritten(trino), expr(datafusion), "{trino}");
        }
    }
}
