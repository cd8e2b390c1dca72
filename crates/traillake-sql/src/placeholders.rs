//! Query parameters: the positional `?` placeholders of a dashboard widget's statement (or of a
//! StartQuery statement) filled with values, in order, as literals and never as SQL text.
//!
//! The statement is tokenized in [`LakeDialect`] (so `?` in a string, a quoted identifier or a
//! comment is not a placeholder), and each placeholder token is replaced in the original text by
//! a literal: `'?'`, the form CloudTrail Lake asks for next to `eventTime`, becomes the value as a
//! string literal (its quotes doubled); a bare `?` becomes a number when the value is one (digits,
//! an optional sign and decimal point), a string literal otherwise. A value therefore cannot change
//! the statement's shape: it is always exactly one literal token.

use sqlparser::tokenizer::{Token, Tokenizer};

use crate::{InvalidStatement, LakeDialect, Result};

/// Returns the statement's placeholders: the byte range of each in `sql`, and whether it was
/// quoted (`'?'`).
fn placeholders(sql: &str) -> Result<Vec<(std::ops::Range<usize>, bool)>> {
    let dialect = LakeDialect::default();
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|error| InvalidStatement(format!("the statement does not parse: {error}")))?;
    // Spans are lines and columns of characters, 1-based: the byte offset of each line's start.
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(at, _)| at + 1))
        .collect();
    let offset = |line: u64, column: u64| -> usize {
        let start = line_starts
            .get(usize::try_from(line).unwrap_or(usize::MAX).saturating_sub(1))
            .copied()
            .unwrap_or(sql.len());
        let column = usize::try_from(column).unwrap_or(usize::MAX).saturating_sub(1);
        sql[start..]
            .char_indices()
            .nth(column)
            .map_or(sql.len(), |(at, _)| start + at)
    };
    let mut found = Vec::new();
    for token in tokens {
        let quoted = match &token.token {
            Token::Placeholder(text) if text == "?" => false,
            Token::SingleQuotedString(text) if text == "?" => true,
            _ => continue,
        };
        let (start, end) = (token.span.start, token.span.end);
        found.push((offset(start.line, start.column)..offset(end.line, end.column), quoted));
    }
    Ok(found)
}

/// Returns how many placeholders a statement has.
pub fn count_placeholders(sql: &str) -> Result<usize> {
    Ok(placeholders(sql)?.len())
}

/// Returns the statement with its placeholders filled with `values`, in order; the numbers must
/// agree.
pub fn fill_placeholders(sql: &str, values: &[String]) -> Result<String> {
    let found = placeholders(sql)?;
    if found.len() != values.len() {
        return Err(InvalidStatement(format!(
            "the statement has {} placeholders (?) and {} query parameters are given; give one value per placeholder, \
             in order",
            found.len(),
            values.len()
        )));
    }
    let mut filled = String::with_capacity(sql.len() + values.iter().map(|v| v.len() + 2).sum::<usize>());
    let mut copied = 0;
    for ((range, quoted), value) in found.into_iter().zip(values) {
        filled.push_str(&sql[copied..range.start]);
        if !quoted && is_number(value) {
            filled.push_str(value);
        } else {
            filled.push('\'');
            filled.push_str(&value.replace('\'', "''"));
            filled.push('\'');
        }
        copied = range.end;
    }
    filled.push_str(&sql[copied..]);
    Ok(filled)
}

/// Returns true for an optionally signed decimal number: digits with at most one decimal point.
fn is_number(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let mut points = 0;
    !digits.is_empty()
        && digits.chars().any(|c| c.is_ascii_digit())
        && digits.chars().all(|c| {
            points += usize::from(c == '.');
            c.is_ascii_digit() || c == '.'
        })
        && points <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(sql: &str, values: &[&str]) -> Result<String> {
        fill_placeholders(sql, &values.iter().map(|v| v.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn fills_quoted_and_bare_placeholders_in_order() {
        let sql = "SELECT DATE_TRUNC('?', eventTime), count(*) FROM eds WHERE eventTime > '?' AND n = ? LIMIT ?";
        assert_eq!(
            fill(sql, &["hour", "2026-12-01 00:00:00", "abc", "10"]).unwrap(),
            "SELECT DATE_TRUNC('hour', eventTime), count(*) FROM eds WHERE eventTime > '2026-12-01 00:00:00' AND n = \
             'abc' LIMIT 10"
        );
    }

    #[test]
    fn leaves_question_marks_in_strings_identifiers_and_comments() {
        let sql = "SELECT 'a?b', \"c?\" FROM eds -- why?\nWHERE x = ? /* ? */";
        assert_eq!(count_placeholders(sql).unwrap(), 1);
        assert_eq!(
            fill(sql, &["1"]).unwrap(),
            "SELECT 'a?b', \"c?\" FROM eds -- why?\nWHERE x = 1 /* ? */"
        );
    }

    #[test]
    fn a_value_is_one_literal_whatever_it_holds() {
        let sql = "SELECT * FROM eds WHERE eventName = ? AND eventTime > '?'";
        let hostile = "x' OR '1'='1";
        let filled = fill(sql, &[hostile, "'; DROP TABLE eds; --"]).unwrap();
        assert_eq!(
            filled,
            "SELECT * FROM eds WHERE eventName = 'x'' OR ''1''=''1' AND eventTime > '''; DROP TABLE eds; --'"
        );
        // Tokenized again, the filled statement has exactly the literals it had placeholders.
        let dialect = LakeDialect::default();
        let strings = Tokenizer::new(&dialect, &filled)
            .tokenize()
            .unwrap()
            .into_iter()
            .filter(|token| matches!(token, Token::SingleQuotedString(_)))
            .collect::<Vec<_>>();
        assert_eq!(
            strings,
            [
                Token::SingleQuotedString(hostile.to_string()),
                Token::SingleQuotedString("'; DROP TABLE eds; --".to_string())
            ]
        );
        assert_eq!(
            fill("SELECT ? FROM eds", &["1 OR 1=1"]).unwrap(),
            "SELECT '1 OR 1=1' FROM eds"
        );
        assert_eq!(fill("SELECT ? FROM eds", &["-1.5"]).unwrap(), "SELECT -1.5 FROM eds");
        assert_eq!(
            fill("SELECT ? FROM eds", &["1.2.3"]).unwrap(),
            "SELECT '1.2.3' FROM eds"
        );
    }

    #[test]
    fn counts_must_agree() {
        let error = fill("SELECT ? FROM eds", &[]).unwrap_err();
        assert!(error.0.contains("1 placeholders"), "{error}");
        assert!(fill("SELECT 1 FROM eds", &["x"]).is_err());
        assert_eq!(fill("SELECT 1 FROM eds", &[]).unwrap(), "SELECT 1 FROM eds");
    }

    #[test]
    fn works_across_lines_and_wide_characters() {
        let sql = "SELECT 'é' AS a,\n  ? AS b\nFROM eds WHERE t > '?'";
        assert_eq!(
            fill(sql, &["2", "ü"]).unwrap(),
            "SELECT 'é' AS a,\n  2 AS b\nFROM eds WHERE t > 'ü'"
        );
    }
}
