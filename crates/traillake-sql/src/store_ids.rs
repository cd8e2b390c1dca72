//! The lexical pre-pass before parsing: unquoted hyphenated store IDs and ARNs in table positions
//! are quoted, so that `FROM 5e2676f8-9fce-...` does not start a number.

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
}
