//! How the answers of an inference job's workers become one prediction per query (CONTRACT §4).
//! Pure functions over JSON values; the fan-out that collects the answers is in
//! [`crate::ensemble`].
//!
//! - Classification tasks (`IMAGE_CLASSIFICATION`, `TABULAR_CLASSIFICATION`) average the
//!   workers' class-probability vectors element-wise ([`Rule::Average`]). A prediction may be a
//!   number or (nested) lists of numbers; every averaged worker must give each query the same
//!   shape as the best-scoring one. A worker whose predictions are not numeric, or are shaped
//!   differently, is left out. When no worker's predictions are numeric at all (a classifier
//!   that answers with labels), the best-scoring worker's answer is taken instead.
//! - Every other task takes the answer of the best-scoring worker ([`Rule::BestScore`]). A
//!   worker without a score ranks below any score; ties go to the worker listed first.
//!
//! A worker whose answer does not hold exactly one prediction per query is left out under both
//! rules.

use serde_json::{Number, Value};

/// How answers are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Element-wise mean of the numeric predictions.
    Average,
    /// The best-scoring worker's predictions.
    BestScore,
}

impl Rule {
    /// The rule of a task.
    pub fn for_task(task: &str) -> Rule {
        match task {
            "IMAGE_CLASSIFICATION" | "TABULAR_CLASSIFICATION" => Rule::Average,
            _ => Rule::BestScore,
        }
    }
}

/// One worker's answer to a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The score of the trial the worker serves.
    pub score: Option<f64>,
    /// Its predictions, one per query.
    pub predictions: Vec<Value>,
}

/// One prediction per query, combined from `answers` (in the workers' listed order) by `rule`;
/// `None` when no answer has exactly `queries` predictions.
pub fn combine(rule: Rule, answers: Vec<Answer>, queries: usize) -> Option<Vec<Value>> {
    let mut answers: Vec<Answer> = answers
        .into_iter()
        .filter(|a| a.predictions.len() == queries)
        .collect();
    if answers.is_empty() {
        return None;
    }
    if rule == Rule::BestScore || answers.len() == 1 {
        return Some(take_best(answers));
    }
    // Averaging: the numeric answers, the best-scoring first.
    let numeric: Vec<usize> = (0..answers.len())
        .filter(|&i| answers[i].predictions.iter().all(is_numeric))
        .collect();
    let Some(&reference) = numeric.iter().max_by(|&&a, &&b| {
        // `max_by` keeps the last of equals; compare reversed positions so the first wins.
        rank(answers[a].score)
            .total_cmp(&rank(answers[b].score))
            .then(b.cmp(&a))
    }) else {
        return Some(take_best(answers));
    };
    let members: Vec<usize> = numeric
        .into_iter()
        .filter(|&i| {
            i == reference
                || answers[i]
                    .predictions
                    .iter()
                    .zip(&answers[reference].predictions)
                    .all(|(p, r)| same_shape(p, r))
        })
        .collect();
    if members.len() == 1 {
        return Some(std::mem::take(&mut answers[reference].predictions));
    }
    let mean = (0..queries)
        .map(|q| {
            let values: Vec<&Value> = members
                .iter()
                .map(|&i| &answers[i].predictions[q])
                .collect();
            mean(&values)
        })
        .collect();
    Some(mean)
}

/// A score for ranking: no score ranks below every number.
fn rank(score: Option<f64>) -> f64 {
    match score {
        Some(s) if !s.is_nan() => s,
        _ => f64::NEG_INFINITY,
    }
}

/// The predictions of the best-scoring answer (the first of equals).
fn take_best(answers: Vec<Answer>) -> Vec<Value> {
    let mut best: Option<Answer> = None;
    for answer in answers {
        match &best {
            Some(b) if rank(answer.score) <= rank(b.score) => {}
            _ => best = Some(answer),
        }
    }
    best.map(|b| b.predictions).unwrap_or_default()
}

/// A number, or a list of numeric values.
fn is_numeric(value: &Value) -> bool {
    match value {
        Value::Number(_) => true,
        Value::Array(items) => items.iter().all(is_numeric),
        _ => false,
    }
}

/// Whether two numeric values have the same nesting and lengths.
fn same_shape(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => true,
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_shape(a, b))
        }
        _ => false,
    }
}

/// The element-wise mean of values of the same numeric shape.
fn mean(values: &[&Value]) -> Value {
    match values.first() {
        Some(Value::Array(first)) => Value::Array(
            (0..first.len())
                .map(|i| {
                    let column: Vec<&Value> = values
                        .iter()
                        .map(|v| match v {
                            Value::Array(items) => &items[i],
                            _ => unreachable!("shapes were checked"),
                        })
                        .collect();
                    mean(&column)
                })
                .collect(),
        ),
        _ => {
            // Dividing each term keeps sums of huge values from overflowing.
            let n = values.len() as f64;
            let total: f64 = values.iter().map(|v| v.as_f64().unwrap_or(0.0) / n).sum();
            Number::from_f64(total).map_or(Value::Null, Value::Number)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(score: Option<f64>, predictions: Value) -> Answer {
        Answer {
            score,
            predictions: serde_json::from_value(predictions).unwrap(),
        }
    }

    fn close(actual: &Value, expected: &Value) -> bool {
        match (actual, expected) {
            (Value::Array(a), Value::Array(e)) => {
                a.len() == e.len() && a.iter().zip(e).all(|(a, e)| close(a, e))
            }
            (a, e) => match (a.as_f64(), e.as_f64()) {
                (Some(a), Some(e)) => (a - e).abs() < 1e-12,
                _ => a == e,
            },
        }
    }

    fn assert_close(actual: Option<Vec<Value>>, expected: Value) {
        let actual = Value::Array(actual.expect("a combined answer"));
        assert!(close(&actual, &expected), "{actual} != {expected}");
    }

    #[test]
    fn classification_tasks_average_and_the_others_take_the_best() {
        assert_eq!(Rule::for_task("IMAGE_CLASSIFICATION"), Rule::Average);
        assert_eq!(Rule::for_task("TABULAR_CLASSIFICATION"), Rule::Average);
        assert_eq!(Rule::for_task("TABULAR_REGRESSION"), Rule::BestScore);
        assert_eq!(Rule::for_task("POS_TAGGING"), Rule::BestScore);
        assert_eq!(Rule::for_task(""), Rule::BestScore);
    }

    #[test]
    fn probability_vectors_are_averaged_element_wise_per_query() {
        let answers = vec![
            answer(Some(0.9), json!([[0.2, 0.8], [1.0, 0.0]])),
            answer(Some(0.5), json!([[0.6, 0.4], [0.0, 1.0]])),
            answer(None, json!([[0.1, 0.9], [0.5, 0.5]])),
        ];
        assert_close(
            combine(Rule::Average, answers, 2),
            json!([[0.3, 0.7], [0.5, 0.5]]),
        );
    }

    #[test]
    fn nested_and_scalar_predictions_are_averaged_too() {
        let answers = vec![
            answer(Some(1.0), json!([[[1, 2], [3, 4]], 0.25])),
            answer(Some(0.0), json!([[[3, 4], [5, 6]], 0.75])),
        ];
        assert_close(
            combine(Rule::Average, answers, 2),
            json!([[[2.0, 3.0], [4.0, 5.0]], 0.5]),
        );
        let huge = vec![
            answer(None, json!([f64::MAX])),
            answer(None, json!([f64::MAX])),
        ];
        assert_close(combine(Rule::Average, huge, 1), json!([f64::MAX]));
    }

    #[test]
    fn a_differently_shaped_or_non_numeric_answer_is_left_out_of_the_mean() {
        let answers = vec![
            answer(Some(0.7), json!([[0.2, 0.8]])),
            answer(Some(0.9), json!([[0.4, 0.6]])),
            // Three classes where the best-scoring worker has two.
            answer(Some(0.8), json!([[0.1, 0.1, 0.8]])),
            answer(Some(1.0), json!([["cat", "dog"]])),
            answer(Some(0.1), json!([[0.3, null]])),
        ];
        assert_close(combine(Rule::Average, answers, 1), json!([[0.3, 0.7]]));
    }

    #[test]
    fn the_best_scoring_shape_wins_a_disagreement() {
        let answers = vec![
            answer(Some(0.1), json!([[0.5, 0.5]])),
            answer(Some(0.9), json!([[0.2, 0.3, 0.5]])),
        ];
        assert_eq!(
            combine(Rule::Average, answers, 1),
            Some(vec![json!([0.2, 0.3, 0.5])])
        );
    }

    #[test]
    fn labels_cannot_be_averaged_so_the_best_answer_is_taken() {
        let answers = vec![
            answer(Some(0.4), json!(["cat", "dog"])),
            answer(Some(0.6), json!(["dog", "dog"])),
        ];
        assert_eq!(
            combine(Rule::Average, answers, 2),
            Some(vec![json!("dog"), json!("dog")])
        );
    }

    #[test]
    fn the_best_score_rule_takes_the_highest_score_and_the_first_of_equals() {
        let answers = vec![
            answer(None, json!([1])),
            answer(Some(0.5), json!([2])),
            answer(Some(0.8), json!([3])),
            answer(Some(0.8), json!([4])),
            answer(Some(f64::NAN), json!([5])),
        ];
        assert_eq!(combine(Rule::BestScore, answers, 1), Some(vec![json!(3)]));
        let unscored = vec![answer(None, json!([{"a": 1}])), answer(None, json!([2]))];
        assert_eq!(
            combine(Rule::BestScore, unscored, 1),
            Some(vec![json!({"a": 1})])
        );
    }

    #[test]
    fn answers_of_the_wrong_length_are_left_out_and_none_left_is_none() {
        let answers = vec![
            answer(Some(0.9), json!([[0.5, 0.5]])),
            answer(Some(0.1), json!([[0.1, 0.9], [0.2, 0.8]])),
        ];
        assert_eq!(
            combine(Rule::BestScore, answers.clone(), 2),
            Some(vec![json!([0.1, 0.9]), json!([0.2, 0.8])])
        );
        assert_eq!(
            combine(Rule::Average, answers.clone(), 2),
            Some(vec![json!([0.1, 0.9]), json!([0.2, 0.8])])
        );
        assert_eq!(combine(Rule::Average, answers.clone(), 3), None);
        assert_eq!(combine(Rule::BestScore, Vec::new(), 1), None);
    }

    #[test]
    fn a_single_answer_is_passed_through_unchanged() {
        let answers = vec![answer(Some(0.2), json!([[1, 0]]))];
        assert_eq!(
            combine(Rule::Average, answers, 1),
            Some(vec![json!([1, 0])])
        );
    }
}
