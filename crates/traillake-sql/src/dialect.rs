//! `LakeDialect`: the SQL dialect statements are parsed in, sqlparser's generic dialect with
//! Trino's lambdas, and the bound on the parser's work that keeps a few hundred bytes from pinning a
//! core.

use std::cell::Cell;

use sqlparser::ast::Expr;
use sqlparser::dialect::{Dialect, GenericDialect};
use sqlparser::parser::{Parser, ParserError};

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
    pub(crate) fn stopped(&self) -> bool {
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
