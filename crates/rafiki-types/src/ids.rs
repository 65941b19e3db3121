//! Typed ids: the uuids of different tables as different types, where several are passed side
//! by side (a trial's job, model and worker; an inference worker's job and trial), so that two
//! cannot be swapped unnoticed. On the wire and in the database each is its bare uuid.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Declares an id newtype over `Uuid`: serialised as the uuid, shown as the uuid.
macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A user's id.
    UserId
);
id_type!(
    /// A train job's id.
    TrainJobId
);
id_type!(
    /// A sub-job's id (one model of a train job).
    SubTrainJobId
);
id_type!(
    /// A model's id.
    ModelId
);
id_type!(
    /// A trial's id.
    TrialId
);
id_type!(
    /// An inference job's id.
    InferenceJobId
);
id_type!(
    /// A service's id (a worker or a predictor).
    ServiceId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_uuid_on_the_wire_and_in_text() {
        let uuid = Uuid::from_u128(7);
        let id = TrialId(uuid);
        assert_eq!(serde_json::to_value(id).unwrap(), serde_json::json!(uuid));
        assert_eq!(
            serde_json::from_value::<TrialId>(serde_json::json!(uuid)).unwrap(),
            id
        );
        assert_eq!(id.to_string(), uuid.to_string());
        assert_eq!(Uuid::from(id), uuid);
    }
}
