//! Gathers the queries of concurrent `POST /predict` requests into batches, so that the model's
//! single-threaded Python runtime makes one `predict` call for many requests.
//!
//! HTTP handlers hold a [`Batcher`] and call [`Batcher::predict`] with their queries; the one
//! loop that owns the runtime takes [`Batch`]es from the [`BatchQueue`], predicts, and
//! [`Batch::answer`]s, which hands each request its own predictions, in order.
//!
//! A batch starts with the oldest waiting request and takes the requests behind it, in arrival
//! order, until it holds `max_batch_size` queries or the oldest request has waited `max_wait`.
//! Requests that queued while the model was busy have usually waited long enough already, so
//! under load a batch leaves at once with whatever is queued; an idle worker waits at most
//! `max_wait` for company (by default not at all: batches then grow with the load alone). A request is never split: one with more queries than
//! `max_batch_size` is a batch of its own, and a request that would overflow the batch opens the
//! next one. Requests whose caller went away before their batch was made are dropped unseen.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::config::BatchSettings;

/// How many requests may wait for the model before callers wait to be queued.
pub const QUEUE_CAPACITY: usize = 4096;

/// Why a request got no predictions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BatchError {
    /// The model failed on the batch the request was part of (every request of that batch
    /// gets the same error).
    #[error("{0}")]
    Model(Arc<str>),
    /// The worker stopped serving.
    #[error("the worker is not serving any more")]
    Closed,
}

type Reply = oneshot::Sender<Result<Vec<Value>, BatchError>>;

/// One request waiting for its batch.
struct Job {
    queries: Vec<Value>,
    arrived: Instant,
    reply: Reply,
}

/// The handlers' side: submits queries and waits for their predictions.
#[derive(Debug, Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Job>,
}

/// The model loop's side: hands out batches.
pub struct BatchQueue {
    rx: mpsc::Receiver<Job>,
    /// A request that did not fit into the previous batch: it opens the next one.
    held: Option<Job>,
    settings: BatchSettings,
}

/// A new batcher and its queue.
pub fn channel(settings: BatchSettings) -> (Batcher, BatchQueue) {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let queue = BatchQueue {
        rx,
        held: None,
        settings,
    };
    (Batcher { tx }, queue)
}

impl Batcher {
    /// The predictions of `queries`, one per query in the same order, once the batch they
    /// joined has been predicted.
    pub async fn predict(&self, queries: Vec<Value>) -> Result<Vec<Value>, BatchError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            queries,
            arrived: Instant::now(),
            reply,
        };
        self.tx.send(job).await.map_err(|_| BatchError::Closed)?;
        // A dropped reply means the model loop ended with this request unanswered.
        answer.await.unwrap_or(Err(BatchError::Closed))
    }
}

impl BatchQueue {
    /// The next batch: waits for a first request, then gathers more as described in the
    /// module's documentation. `None` once every [`Batcher`] is gone and nothing is left.
    pub async fn next(&mut self) -> Option<Batch> {
        let first = loop {
            let job = match self.held.take() {
                Some(job) => job,
                None => self.rx.recv().await?,
            };
            if !job.reply.is_closed() {
                break job;
            }
        };
        let max = self.settings.max_batch_size;
        let deadline = first.arrived + self.settings.max_wait;
        let mut batch = Batch::default();
        batch.push(first);
        while batch.queries.len() < max {
            let job = match self.rx.try_recv() {
                Ok(job) => job,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                        Ok(Some(job)) => job,
                        Ok(None) | Err(_) => break,
                    }
                }
            };
            if job.reply.is_closed() {
                continue;
            }
            if batch.queries.len() + job.queries.len() > max {
                self.held = Some(job);
                break;
            }
            batch.push(job);
        }
        Some(batch)
    }
}

/// Queries of one or more requests, to be predicted in one call.
#[derive(Default)]
pub struct Batch {
    queries: Vec<Value>,
    /// Each request's number of queries and where its answer goes, in batch order.
    parts: Vec<(usize, Reply)>,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("queries", &self.queries.len())
            .field("requests", &self.parts.len())
            .finish()
    }
}

impl Batch {
    fn push(&mut self, job: Job) {
        self.parts.push((job.queries.len(), job.reply));
        if self.queries.is_empty() {
            self.queries = job.queries;
        } else {
            self.queries.extend(job.queries);
        }
    }

    /// How many queries the batch holds (before [`Batch::take_queries`]).
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// Whether the batch holds no queries.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// How many requests the batch answers.
    pub fn requests(&self) -> usize {
        self.parts.len()
    }

    /// The queries of every request, in batch order; the batch keeps only the bookkeeping.
    pub fn take_queries(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.queries)
    }

    /// Sends each request its slice of `predictions` (which holds one prediction per query of
    /// the batch, in batch order), or the error to all of them. A count that does not match
    /// the batch's queries is an error for all.
    pub fn answer(self, result: Result<Vec<Value>, Arc<str>>) {
        let expected: usize = self.parts.iter().map(|(n, _)| n).sum();
        let result = result.and_then(|predictions| {
            if predictions.len() == expected {
                Ok(predictions)
            } else {
                Err(format!(
                    "the model returned {} predictions for {expected} queries",
                    predictions.len()
                )
                .into())
            }
        });
        match result {
            Ok(predictions) => {
                let mut predictions = predictions.into_iter();
                for (n, reply) in self.parts {
                    // The caller may have gone away meanwhile; nothing to do then.
                    let _ = reply.send(Ok(predictions.by_ref().take(n).collect()));
                }
            }
            Err(message) => {
                for (_, reply) in self.parts {
                    let _ = reply.send(Err(BatchError::Model(message.clone())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn settings(max_batch_size: usize, wait_ms: u64) -> BatchSettings {
        BatchSettings {
            max_batch_size,
            max_wait: Duration::from_millis(wait_ms),
        }
    }

    fn numbers(range: std::ops::Range<i64>) -> Vec<Value> {
        range.map(|i| json!(i)).collect()
    }

    /// A model loop that answers each query `q` with `q * 10` and records the batch sizes.
    async fn tens(mut queue: BatchQueue, sizes: Arc<std::sync::Mutex<Vec<usize>>>) {
        while let Some(mut batch) = queue.next().await {
            sizes.lock().unwrap().push(batch.len());
            let answers = batch
                .take_queries()
                .into_iter()
                .map(|q| json!(q.as_i64().unwrap() * 10))
                .collect();
            batch.answer(Ok(answers));
        }
    }

    #[tokio::test]
    async fn queued_requests_share_one_batch_and_get_their_own_answers_in_order() {
        let (batcher, mut queue) = channel(settings(256, 0));
        let mut waiting = Vec::new();
        for i in 0..5i64 {
            let batcher = batcher.clone();
            let queries = numbers(i * 3..i * 3 + 3);
            waiting.push(tokio::spawn(async move { batcher.predict(queries).await }));
        }
        // Let every request reach the queue before the loop looks.
        while queue.rx.len() < 5 {
            tokio::task::yield_now().await;
        }
        let mut batch = queue.next().await.unwrap();
        assert_eq!((batch.len(), batch.requests()), (15, 5));
        let queries = batch.take_queries();
        assert_eq!(queries, numbers(0..15), "requests keep their arrival order");
        batch.answer(Ok(queries.iter().map(|q| json!([q])).collect()));
        for (i, request) in waiting.into_iter().enumerate() {
            let expected: Vec<Value> = numbers(i as i64 * 3..i as i64 * 3 + 3)
                .into_iter()
                .map(|q| json!([q]))
                .collect();
            assert_eq!(request.await.unwrap().unwrap(), expected);
        }
    }

    #[tokio::test]
    async fn a_batch_stops_at_the_maximum_and_never_splits_a_request() {
        let (batcher, mut queue) = channel(settings(8, 0));
        let mut waiting = Vec::new();
        for (i, size) in [3usize, 3, 3, 12, 1].into_iter().enumerate() {
            let batcher = batcher.clone();
            let queries = vec![json!(i); size];
            waiting.push(tokio::spawn(async move { batcher.predict(queries).await }));
            while queue.rx.len() < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        let mut sizes = Vec::new();
        for _ in 0..3 {
            let mut batch = queue.next().await.unwrap();
            sizes.push((batch.len(), batch.requests()));
            let queries = batch.take_queries();
            batch.answer(Ok(queries));
        }
        // 3+3 fit, the third 3 would overflow; it opens the next batch, which the 12 would
        // overflow; the 12 is a batch of its own; the 1 waits for the next call.
        assert_eq!(sizes, [(6, 2), (3, 1), (12, 1)]);
        let mut batch = queue.next().await.unwrap();
        assert_eq!(batch.len(), 1);
        let queries = batch.take_queries();
        batch.answer(Ok(queries));
        for (i, request) in waiting.into_iter().enumerate() {
            let answer = request.await.unwrap().unwrap();
            assert!(answer.iter().all(|p| *p == json!(i)), "request {i}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_batch_waits_for_company_but_no_longer_than_the_maximum_wait() {
        let (batcher, queue) = channel(settings(256, 50));
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let model = tokio::spawn(tens(queue, sizes.clone()));
        let first = {
            let batcher = batcher.clone();
            tokio::spawn(async move { batcher.predict(numbers(0..1)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = {
            let batcher = batcher.clone();
            tokio::spawn(async move { batcher.predict(numbers(1..3)).await })
        };
        assert_eq!(first.await.unwrap().unwrap(), [json!(0)]);
        assert_eq!(second.await.unwrap().unwrap(), [json!(10), json!(20)]);
        // 100 ms after the last batch a lone request goes alone, after its 50 ms.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        assert_eq!(batcher.predict(numbers(3..4)).await.unwrap(), [json!(30)]);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(50) && waited < Duration::from_millis(55),
            "{waited:?}"
        );
        assert_eq!(*sizes.lock().unwrap(), [3, 1]);
        drop(batcher);
        model.await.unwrap();
    }

    #[tokio::test]
    async fn a_model_error_goes_to_every_request_of_the_batch() {
        let (batcher, mut queue) = channel(settings(256, 0));
        let a = {
            let batcher = batcher.clone();
            tokio::spawn(async move { batcher.predict(numbers(0..2)).await })
        };
        let b = {
            let batcher = batcher.clone();
            tokio::spawn(async move { batcher.predict(numbers(2..3)).await })
        };
        while queue.rx.len() < 2 {
            tokio::task::yield_now().await;
        }
        let batch = queue.next().await.unwrap();
        assert_eq!(batch.requests(), 2);
        batch.answer(Err("Model.predict() raised ValueError: no".into()));
        for request in [a, b] {
            assert_eq!(
                request.await.unwrap(),
                Err(BatchError::Model(
                    "Model.predict() raised ValueError: no".into()
                ))
            );
        }
    }

    #[tokio::test]
    async fn a_wrong_number_of_predictions_fails_the_batch() {
        let (batcher, mut queue) = channel(settings(256, 0));
        let request = tokio::spawn(async move { batcher.predict(numbers(0..3)).await });
        let batch = queue.next().await.unwrap();
        batch.answer(Ok(numbers(0..2)));
        let error = request.await.unwrap().unwrap_err();
        assert_eq!(
            error.to_string(),
            "the model returned 2 predictions for 3 queries"
        );
    }

    #[tokio::test]
    async fn requests_whose_callers_left_are_skipped_and_a_stopped_loop_answers_closed() {
        let (batcher, mut queue) = channel(settings(256, 0));
        let gone = {
            let batcher = batcher.clone();
            tokio::spawn(async move { batcher.predict(numbers(0..1)).await })
        };
        while queue.rx.is_empty() {
            tokio::task::yield_now().await;
        }
        gone.abort();
        let _ = gone.await;
        let kept = {
            let batcher = batcher.clone();
            tokio::spawn(async move { batcher.predict(numbers(1..2)).await })
        };
        let mut batch = queue.next().await.unwrap();
        assert_eq!(batch.take_queries(), numbers(1..2));
        // The model loop ends without answering: the request is told so.
        drop(batch);
        assert_eq!(kept.await.unwrap(), Err(BatchError::Closed));
        drop(queue);
        assert_eq!(
            batcher.predict(numbers(0..1)).await,
            Err(BatchError::Closed)
        );
    }
}
