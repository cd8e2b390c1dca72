//! SearchSampleQueries over traillake's library of sample queries (`samples/sample_queries.json`,
//! written for this project: the usual investigations, each with a name, a description and its
//! SQL over `$EDS_ID`, the store to run it on).
//!
//! Relevance, in 0..1: the phrase and each sample are cut into terms (words of letters and digits,
//! lower case, camelCase split as well as kept whole, a plural `s` dropped, common English words
//! left out); each phrase term weighs its inverse document frequency over the library,
//! `ln(1 + N / (1 + df))`; a sample scores the weights of the phrase terms it has, counted whole
//! when its name or description has the term and half when only its SQL does, over the weight of
//! all the phrase's terms. So 1 means every term of the phrase is in the name or description, and
//! samples without any term are not answered. Ties go by name. Pages are bound to the phrase.
//!
//! Every bad input is `InvalidParameterException`, the only validation error the model gives.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::Result;
use crate::error::{ApiError, ErrorCode};
use crate::paging::{decode_bound_token, encode_bound_token};
use crate::shapes::{SearchSampleQueriesRequest, SearchSampleQueriesResponse, SearchSampleQueriesSearchResult};
use crate::validate::{self, Pattern, StringRule};

const OPERATION: &str = "SearchSampleQueries";
const DEFAULT_RESULTS: i32 = 10;
const MAX_RESULTS: i32 = 50;
const STOP_WORDS: &[&str] = &[
    "a", "all", "an", "and", "any", "are", "by", "do", "does", "for", "from", "how", "i", "in", "is", "it", "me", "my",
    "of", "on", "or", "show", "that", "the", "this", "to", "was", "were", "what", "when", "where", "which", "who",
    "with",
];

static PHRASE_PATTERN: Pattern = Pattern::new(r"^[ -~\n]*$");
static PHRASE: StringRule = StringRule {
    min: 2,
    max: 1000,
    pattern: Some(&PHRASE_PATTERN),
    code: ErrorCode::InvalidParameterException,
};

/// A sample query of the library.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Sample {
    name: String,
    description: String,
    #[serde(rename = "SQL")]
    sql: String,
}

/// A sample with its terms.
struct Indexed {
    sample: Sample,
    /// Terms of its name and description.
    described: BTreeSet<String>,
    /// Terms of its SQL.
    sql: BTreeSet<String>,
}

fn library() -> &'static [Indexed] {
    static LIBRARY: OnceLock<Vec<Indexed>> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let samples: Vec<Sample> = serde_json::from_str(include_str!("../samples/sample_queries.json"))
            .expect("samples/sample_queries.json is a list of samples");
        samples
            .into_iter()
            .map(|sample| Indexed {
                described: terms(&format!("{} {}", sample.name, sample.description)),
                sql: terms(&sample.sql),
                sample,
            })
            .collect()
    })
}

/// Returns the terms of a text.
fn terms(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for word in text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        found.extend(normalized(word));
        // camelCase and PascalCase words: their parts too (ConsoleLogin: console, login).
        let mut part = String::new();
        for c in word.chars() {
            if c.is_ascii_uppercase() && !part.is_empty() && !part.ends_with(|p: char| p.is_ascii_uppercase()) {
                found.extend(normalized(&part));
                part.clear();
            }
            part.push(c);
        }
        if part.len() < word.len() {
            found.extend(normalized(&part));
        }
    }
    found
}

/// Returns a word as a term, or nothing for a common word.
fn normalized(word: &str) -> Option<String> {
    let mut word = word.to_ascii_lowercase();
    if STOP_WORDS.contains(&word.as_str()) || word.len() < 2 {
        return None;
    }
    if let Some(stem) = word.strip_suffix("ies").filter(|stem| stem.len() > 2) {
        word = format!("{stem}y");
    } else if word.len() > 3 && word.ends_with('s') && !word.ends_with("ss") {
        word.pop();
    }
    Some(word)
}

/// Returns the samples that have a term of the phrase, most relevant first, with their relevance.
fn ranked(phrase: &str) -> Vec<(&'static Sample, f64)> {
    let library = library();
    let query = terms(phrase);
    let count = library.len() as f64;
    let mut document_frequency: HashMap<&str, usize> = HashMap::new();
    for term in &query {
        let df = library
            .iter()
            .filter(|s| s.described.contains(term) || s.sql.contains(term))
            .count();
        document_frequency.insert(term, df);
    }
    let weight = |term: &str| (1.0 + count / (1.0 + document_frequency[term] as f64)).ln();
    let total: f64 = query.iter().map(|term| weight(term)).sum();
    if total <= 0.0 {
        return Vec::new();
    }
    let mut found: Vec<(&Sample, f64)> = library
        .iter()
        .map(|indexed| {
            let score: f64 = query
                .iter()
                .map(|term| {
                    if indexed.described.contains(term) {
                        weight(term)
                    } else if indexed.sql.contains(term) {
                        weight(term) / 2.0
                    } else {
                        0.0
                    }
                })
                .sum();
            (&indexed.sample, score / total)
        })
        .filter(|(_, relevance)| *relevance > 0.0)
        .collect();
    found.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.name.cmp(&b.0.name)));
    found
}

/// SearchSampleQueries: checks the request and answers its page of the library.
pub fn search_sample_queries(request: &SearchSampleQueriesRequest) -> Result<SearchSampleQueriesResponse> {
    let phrase = PHRASE.check_required("SearchPhrase", request.search_phrase.as_deref())?;
    let max_results = request.max_results.unwrap_or(DEFAULT_RESULTS);
    validate::range(
        ErrorCode::InvalidParameterException,
        "MaxResults",
        max_results.into(),
        1,
        MAX_RESULTS.into(),
    )?;
    let offset = match request.next_token.as_deref() {
        None => 0,
        Some(token) => {
            let invalid = || {
                ApiError::new(
                    ErrorCode::InvalidParameterException,
                    "NextToken is not a token of this SearchPhrase's results",
                )
            };
            decode_bound_token(OPERATION, phrase, token)
                .map_err(|_| invalid())?
                .parse::<usize>()
                .map_err(|_| invalid())?
        }
    };
    let found = ranked(phrase);
    let end = (offset + max_results as usize).min(found.len());
    let page = found.get(offset..end).unwrap_or_default();
    Ok(SearchSampleQueriesResponse {
        search_results: page
            .iter()
            .map(|(sample, relevance)| SearchSampleQueriesSearchResult {
                name: Some(sample.name.clone()),
                description: Some(sample.description.clone()),
                sql: Some(sample.sql.clone()),
                relevance: Some(*relevance as f32),
            })
            .collect(),
        next_token: (end < found.len()).then(|| encode_bound_token(OPERATION, phrase, &end.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(
        phrase: &str,
        max_results: Option<i32>,
        next_token: Option<String>,
    ) -> Result<SearchSampleQueriesResponse> {
        search_sample_queries(&SearchSampleQueriesRequest {
            search_phrase: Some(phrase.into()),
            max_results,
            next_token,
        })
    }

    fn names(response: &SearchSampleQueriesResponse) -> Vec<&str> {
        response
            .search_results
            .iter()
            .map(|r| r.name.as_deref().unwrap())
            .collect()
    }

    #[test]
    fn the_library_is_whole() {
        assert!(library().len() >= 20);
        for indexed in library() {
            assert!(indexed.sample.sql.contains("$EDS_ID"), "{}", indexed.sample.name);
            assert!(!indexed.described.is_empty() && !indexed.sql.is_empty());
        }
    }

    #[test]
    fn ranks_the_investigation_asked_for_first() {
        let found = search("console logins without MFA", None, None).unwrap();
        assert_eq!(names(&found)[0], "Console sign-ins without MFA");
        let relevance: Vec<f32> = found.search_results.iter().map(|r| r.relevance.unwrap()).collect();
        assert!(relevance.windows(2).all(|pair| pair[0] >= pair[1]), "{relevance:?}");
        assert!(relevance.iter().all(|r| (0.0..=1.0).contains(r)));
        assert_eq!(
            names(&search("root user", None, None).unwrap())[0],
            "Root user activity"
        );
        assert_eq!(
            names(&search("who changed security groups?", None, None).unwrap())[0],
            "Security group changes"
        );
        assert_eq!(
            names(&search("access denied", None, None).unwrap())[0],
            "Access denied errors"
        );
        let exact = search("Root user activity", None, None).unwrap();
        assert_eq!(exact.search_results[0].relevance, Some(1.0));
        assert!(search("zzzz qqqq", None, None).unwrap().search_results.is_empty());
    }

    #[test]
    fn pages_are_bound_to_the_phrase() {
        let all = search("changes", Some(50), None).unwrap();
        assert!(all.search_results.len() > 3);
        let first = search("changes", Some(2), None).unwrap();
        let token = first.next_token.clone().unwrap();
        let second = search("changes", Some(2), Some(token.clone())).unwrap();
        assert_eq!(names(&first), names(&all)[..2]);
        assert_eq!(names(&second), names(&all)[2..4]);
        assert_eq!(
            search("other phrase", Some(2), Some(token)).unwrap_err().code,
            ErrorCode::InvalidParameterException
        );
    }

    #[test]
    fn bad_requests_are_invalid_parameters() {
        for (phrase, max) in [("a", None), ("é accent", None), ("fine", Some(0)), ("fine", Some(51))] {
            assert_eq!(
                search(phrase, max, None).unwrap_err().code,
                ErrorCode::InvalidParameterException,
                "{phrase} {max:?}"
            );
        }
        assert_eq!(
            search_sample_queries(&SearchSampleQueriesRequest::default())
                .unwrap_err()
                .code,
            ErrorCode::InvalidParameterException
        );
    }
}
