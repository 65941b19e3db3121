//! Password hashing with argon2id, run on the blocking pool so a login never stalls the async
//! runtime. Logins of unknown users verify against a dummy hash, so they take as long as a
//! wrong password and the response time does not reveal which emails have accounts.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use secrecy::{ExposeSecret, SecretString};

/// Hashes and verifies passwords.
pub struct Passwords {
    /// A hash of a random password, verified against when the user does not exist.
    dummy_hash: String,
}

impl Passwords {
    /// Prepares the dummy hash (one hashing, at start-up).
    pub async fn new() -> anyhow::Result<Self> {
        let random: String = {
            use rand::distributions::{Alphanumeric, DistString};
            Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
        };
        Ok(Passwords {
            dummy_hash: hash(SecretString::from(random)).await?,
        })
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
}

/// An argon2id PHC string of `password` with a fresh salt.
pub async fn hash(password: SecretString) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        // A fresh random salt from the operating system, per hash.
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify_only_the_right_password() {
        let phc = hash(SecretString::from("correct horse")).await.unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        let passwords = Passwords::new().await.unwrap();
        assert!(passwords
            .verify("correct horse".into(), Some(&phc))
            .await
            .unwrap());
        assert!(!passwords.verify("wrong".into(), Some(&phc)).await.unwrap());
        assert!(!passwords.verify("anything".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_stored_by_earlier_versions_still_verify() {
        // Written by argon2 0.5 (the admin before the 0.6 upgrade) for "pw-of-a-user".
        let stored = "$argon2id$v=19$m=19456,t=2,p=1$7VgemPNj60M5UhHKVr69wA$\
                      7fLZCT1wbO/j5z4VTnXCuFIqvsnVGkDWvMwG+a/VQW0";
        let passwords = Passwords::new().await.unwrap();
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
