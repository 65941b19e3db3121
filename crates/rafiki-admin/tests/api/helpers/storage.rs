//! What a test admin has stored: rows of its database and files of its data directory, for
//! tests that check what an action left behind.

use std::path::{Path, PathBuf};

use super::TestApp;

impl TestApp {
    /// Every file under the data directory (its lock file aside), temporaries included.
    pub fn stored_files(&self) -> Vec<PathBuf> {
        files_under(&self.data_dir)
    }

    /// Rows in `table`.
    pub async fn count_rows(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Asserts that there are no datasets, no models and no stored files at all.
    pub async fn assert_nothing_stored(&self) {
        assert_eq!(self.count_rows("datasets").await, 0, "no dataset rows");
        assert_eq!(self.count_rows("models").await, 0, "no model rows");
        assert_eq!(self.stored_files(), Vec::<PathBuf>::new(), "no files");
    }

    /// The id of the user with this email.
    pub async fn user_id(&self, email: &str) -> uuid::Uuid {
        sqlx::query_scalar("select id from users where email = $1")
            .bind(email)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if path.file_name().unwrap() != ".lock" {
            out.push(path);
        }
    }
    out.sort();
    out
}
