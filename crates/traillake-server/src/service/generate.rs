//! GenerateQuery: a prompt made into a query of one store by the query generator the operator
//! configures (`--query-generator COMMAND`), never by traillake itself. The command runs with
//! `sh -c`, reads a JSON request on its standard input (the prompt, the store, its columns as
//! SQL sees them, the dialect) and writes one SQL statement on its standard output; it may wrap
//! any language model. The statement must pass the SQL front end and the planner as a query of
//! that store and no other, or the answer is `GenerateResponseException` with the reason. A
//! generated query is kept under its QueryAlias, which StartQuery runs (DescribeQuery then shows
//! the prompt). Without a generator GenerateQuery is `UnsupportedOperationException`.

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use traillake_api::arn::event_data_store_arn;
use traillake_api::queries::check_generate;
use traillake_api::shapes::{GenerateQueryRequest, GenerateQueryResponse};
use traillake_api::{ApiError, ErrorCode, RequestContext};
use traillake_lake::federation::columns;
use traillake_lake::generated_queries::{self, GeneratedQuery};
use traillake_query::QueryError;
use traillake_query::dialect::prepare;

use super::Service;
use super::errors::IntoApi as _;

/// How long the generator may take.
const GENERATOR_TIME_LIMIT: Duration = Duration::from_secs(60);

fn generate_error(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::GenerateResponseException, message)
}

/// Runs the generator command with `input` on its standard input; returns its standard output,
/// or why it gave none.
fn run_generator(command: &str, input: &[u8]) -> Result<String, String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("the query generator could not be started: {error}"))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + GENERATOR_TIME_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the query generator gave no answer within {} seconds",
                    GENERATOR_TIME_LIMIT.as_secs()
                ));
            }
            Err(error) => return Err(format!("waiting for the query generator failed: {error}")),
        }
    };
    let _ = writer.join();
    let output = reader
        .join()
        .map_err(|_| "reading the query generator's answer failed".to_string())?
        .map_err(|error| format!("reading the query generator's answer failed: {error}"))?;
    let errors = errors.join().unwrap_or_default();
    if !status.success() {
        let tail: String = errors
            .trim()
            .chars()
            .rev()
            .take(300)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(format!("the query generator failed ({status}): {tail}"));
    }
    Ok(output)
}

/// Returns the statement of a generator's answer: its text without a Markdown code fence.
fn statement_of(answer: &str) -> String {
    let text = answer.trim();
    let text = match text.strip_prefix("```") {
        Some(fenced) => fenced
            .split_once('\n')
            .map_or("", |(_language, rest)| rest)
            .trim_end()
            .trim_end_matches("```"),
        None => text,
    };
    text.trim().trim_end_matches(';').trim().to_string()
}

impl Service {
    /// GenerateQuery.
    pub async fn generate_query(
        &self,
        ctx: &RequestContext,
        request: GenerateQueryRequest,
    ) -> Result<GenerateQueryResponse, ApiError> {
        let Some(command) = self.settings.query_generator.clone() else {
            return Err(ApiError::new(
                ErrorCode::UnsupportedOperationException,
                "GenerateQuery needs a query generator, and this server has none: start it with --query-generator COMMAND",
            ));
        };
        let (id, prompt) = check_generate(ctx, &request)?;
        let store = self.catalog.event_data_store(&ctx.account_id, &id).await.api()?;
        if !store.is_active() {
            return Err(ApiError::new(
                ErrorCode::InactiveEventDataStoreException,
                format!("event data store {id} is pending deletion"),
            ));
        }
        let arn = event_data_store_arn(ctx, &id);
        let input = json!({
            "prompt": prompt,
            "eventDataStore": id,
            "eventDataStoreArn": arn,
            "columns": columns(store.kind),
            "dialect": "CloudTrail Lake SQL: one SELECT statement, Trino functions; name the store by its ID in FROM",
        })
        .to_string();
        let answer = tokio::task::spawn_blocking(move || run_generator(&command, input.as_bytes()))
            .await
            .map_err(|_| ApiError::internal())?
            .map_err(generate_error)?;
        let statement = statement_of(&answer);
        if statement.is_empty() {
            return Err(generate_error("the query generator answered no statement"));
        }
        let invalid = |reason: String| {
            generate_error(format!(
                "the generated query is not a valid query of event data store {id}: {reason}. The query was: {statement}"
            ))
        };
        prepare::<QueryError>(&statement, |written| {
            let named = written.to_ascii_lowercase();
            if named == id || named == arn.to_ascii_lowercase() {
                Ok(id.clone())
            } else {
                Err(QueryError::InvalidStatement(format!(
                    "it reads {written}, not only this store"
                )))
            }
        })
        .map_err(|error| invalid(error.to_string()))?;
        self.queries
            .check(&ctx.account_id, &statement)
            .await
            .map_err(|error| invalid(error.to_string()))?;
        let alias = format!("generated-{}", uuid::Uuid::new_v4().simple());
        let generated = GeneratedQuery {
            alias: alias.clone(),
            account_id: ctx.account_id.clone(),
            store_id: id,
            prompt,
            statement: statement.clone(),
            created: Utc::now(),
        };
        generated_queries::save(self.root(), &generated).await.api()?;
        Ok(GenerateQueryResponse {
            query_statement: Some(statement),
            query_alias: Some(alias),
            event_data_store_owner_account_id: Some(ctx.account_id.clone()),
        })
    }

    /// Returns the statement a QueryAlias of StartQuery names, with the prompt of a generated
    /// query: a generated query of the account, or a dashboard widget's.
    pub(super) async fn alias_statement(
        &self,
        ctx: &RequestContext,
        alias: &str,
    ) -> Result<(String, Option<String>), ApiError> {
        if let Some(generated) = generated_queries::load(self.root(), &ctx.account_id, alias)
            .await
            .api()?
        {
            return Ok((generated.statement, Some(generated.prompt)));
        }
        Ok((self.widget_statement(ctx, alias).await?, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_statement_out_of_a_fence() {
        assert_eq!(statement_of("SELECT 1 FROM x;\n"), "SELECT 1 FROM x");
        assert_eq!(statement_of("```sql\nSELECT 1\nFROM x\n```"), "SELECT 1\nFROM x");
        assert_eq!(statement_of("```\nSELECT 1\n```\n"), "SELECT 1");
    }

    #[test]
    fn runs_the_command_with_its_input() {
        assert_eq!(run_generator("tr a-z A-Z", b"select").unwrap(), "SELECT");
        let error = run_generator("echo no model >&2; exit 3", b"").unwrap_err();
        assert!(error.contains("no model") && error.contains('3'), "{error}");
    }
}
