//! Password hashing with argon2id, run on the blocking pool so a login never stalls the async
//! runtime, and at most `password_hash_concurrency` at a time: each hashing takes 19 MiB, so a
//! flood of logins waits for a turn instead of exhausting memory (waiting costs only the
//! request). Logins of unknown users verify against a dummy hash, so they take as long as a
//! wrong password and the response time does not reveal which emails have accounts.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// Hashes and verifies passwords.
pub struct Passwords {
    /// A hash of a random password, verified against when the user does not exist.
    dummy_hash: String,
    /// One permit per hashing that may run at once.
    permits: Semaphore,
}

impl Passwords {
    /// Allows `concurrency` hashings at once (at least one) and prepares the dummy hash.
    pub async fn new(concurrency: usize) -> anyhow::Result<Self> {
        let mut passwords = Passwords {
            dummy_hash: String::new(),
            permits: Semaphore::new(concurrency.max(1)),
        };
        let random: String = {
            use rand::distributions::{Alphanumeric, DistString};
            Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
        };
        passwords.dummy_hash = passwords.hash(SecretString::from(random)).await?;
        Ok(passwords)
    }

    /// Whether `password` matches `stored` (a PHC string); with `None`, spends the same time
    /// and answers false.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<&str>,
    ) -> anyhow::Result<bool> {
        let known = stored.is_some();
        let phc = stored.unwrap_or(&self.dummy_hash).to_owned();
        let _turn = self.permits.acquire().await?;
        let matches = tokio::task::spawn_blocking(move || -> anyhow::Result<bool> {
            let parsed =
                PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
            Ok(Argon2::default()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok())
        })
        .await??;
        Ok(known && matches)
    }

    /// An argon2id PHC string of `password` with a fresh salt.
    pub async fn hash(&self, password: SecretString) -> anyhow::Result<String> {
        let _turn = self.permits.acquire().await?;
        tokio::task::spawn_blocking(move || {
            // A fresh random salt from the operating system, per hash.
            Argon2::default()
                .hash_password(password.expose_secret().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify_only_the_right_password() {
        let passwords = Passwords::new(2).await.unwrap();
        let phc = passwords
            .hash(SecretString::from("correct horse"))
            .await
            .unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(passwords
            .verify("correct horse".into(), Some(&phc))
            .await
            .unwrap());
        assert!(!passwords.verify("wrong".into(), Some(&phc)).await.unwrap());
        assert!(!passwords.verify("anything".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn a_hashing_waits_while_every_permit_is_taken() {
        use futures_util::FutureExt;
        let passwords = Passwords::new(1).await.unwrap();
        let taken = passwords.permits.acquire().await.unwrap();
        let mut verify = Box::pin(passwords.verify("anything".into(), None));
        assert!(
            (&mut verify).now_or_never().is_none(),
            "ran without a permit"
        );
        drop(taken);
        assert!(!verify.await.unwrap());
    }

    #[tokio::test]
    async fn hashes_stored_by_earlier_versions_still_verify() {
        // Written by argon2 0.5 (the admin before the 0.6 upgrade) for "pw-of-a-user".
        let stored = "$argon2id$v=19$m=19456,t=2,p=1$7VgemPNj60M5UhHKVr69wA$\
                      7fLZCT1wbO/j5z4VTnXCuFIqvsnVGkDWvMwG+a/VQW0";
        let passwords = Passwords::new(1).await.unwrap();
        assert!(passwords
            .verify("pw-of-a-user".into(), Some(stored))
            .await
            .unwrap());
        assert!(!passwords
            .verify("pw-of-another".into(), Some(stored))
            .await
            .unwrap());
    }
}
