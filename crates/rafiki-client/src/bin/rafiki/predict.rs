//! `rafiki predict`: sending queries to a predictor, named by its host or by the app whose
//! running inference job it serves.

use std::path::PathBuf;

use clap::Args;
use rafiki_client::types::inference::PredictRequest;
use serde_json::Value;

use crate::context::Context;
use crate::failure::Failure;
use crate::files::read_text;
use crate::output::tables;

/// `rafiki predict ...`
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// JSON queries: a list of queries, or {"query": q} / {"queries": [...]}; `-` or nothing
    /// for stdin
    file: Option<PathBuf>,
    /// The predictor's host:port
    #[arg(long, required_unless_present = "app")]
    predictor: Option<String>,
    /// Find the predictor of this app's running inference job instead
    #[arg(long, conflicts_with = "predictor")]
    app: Option<String>,
    /// The app's version with --app [default: the latest]
    #[arg(long, allow_negative_numbers = true, default_value_t = rafiki_client::LATEST)]
    app_version: i32,
    /// The input is one query (e.g. one image as nested lists), not a list of them
    #[arg(long)]
    one: bool,
}

/// The predict request a JSON input stands for: `{"query": q}` and `{"queries": [...]}` as
/// they are, a list as its queries, anything else (or anything with `one`) as one query.
pub fn predict_request(input: Value, one: bool) -> Result<PredictRequest, Failure> {
    if one {
        return Ok(PredictRequest::Query(input));
    }
    match input {
        Value::Array(queries) => Ok(PredictRequest::Queries(queries)),
        Value::Object(map)
            if map.len() == 1 && (map.contains_key("query") || map.contains_key("queries")) =>
        {
            serde_json::from_value(Value::Object(map))
                .map_err(|e| Failure::usage(format!("the input is not a predict body: {e}")))
        }
        _ => Err(Failure::usage(
            "the input must be a JSON list of queries, {\"query\": q} or {\"queries\": [...]} \
             (or pass --one to send it as one query)",
        )),
    }
}

/// `rafiki predict`
pub async fn run(ctx: &Context, args: PredictArgs) -> Result<(), Failure> {
    let text = read_text(args.file.as_deref())?;
    let input: Value = serde_json::from_str(&text)
        .map_err(|e| Failure::usage(format!("the queries are not JSON: {e}")))?;
    let request = predict_request(input, args.one)?;
    let (client, host) = match (args.predictor, args.app) {
        (Some(host), _) => (ctx.anonymous(), host),
        (None, Some(app)) => {
            let client = ctx.client()?;
            let host = client
                .get_running_inference_job(&app, args.app_version)
                .await?
                .predictor_host;
            (client, host)
        }
        (None, None) => return Err(Failure::usage("give --predictor HOST:PORT or --app APP")),
    };
    let answer = client.predict(&host, &request).await?;
    ctx.out.show(&answer, |a| tables::predictions(a, &request));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn predict_inputs_become_the_contracts_bodies() {
        assert_eq!(
            predict_request(json!([1, 2]), false).unwrap(),
            PredictRequest::Queries(vec![json!(1), json!(2)])
        );
        assert_eq!(
            predict_request(json!([1, 2]), true).unwrap(),
            PredictRequest::Query(json!([1, 2]))
        );
        assert_eq!(
            predict_request(json!({"query": {"a": 1}}), false).unwrap(),
            PredictRequest::Query(json!({"a": 1}))
        );
        assert_eq!(
            predict_request(json!({"queries": [3]}), false).unwrap(),
            PredictRequest::Queries(vec![json!(3)])
        );
        assert!(predict_request(json!({"a": 1}), false).is_err());
        assert!(predict_request(json!({"queries": 3}), false).is_err());
    }
}
