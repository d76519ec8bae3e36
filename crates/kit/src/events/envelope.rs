//! The event envelope.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::ServiceName;
use crate::events::HandlerError;

/// One event, as stored in outboxes and sent over brokers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// UUIDv7; the dedupe key of every consumer.
    pub id: String,
    /// Dotted type, e.g. `order.confirmed`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Schema version of `data` for this type.
    pub version: i32,
    /// The publishing service.
    pub source: String,
    /// RFC 3339 UTC.
    pub occurred_at: String,
    /// W3C trace context of the request that caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The payload; consumers read only the fields they use.
    pub data: serde_json::Value,
}

impl Envelope {
    /// A new event from `source`.
    pub fn new(event_type: &str, version: i32, source: ServiceName, data: impl Serialize) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            event_type: event_type.to_string(),
            version,
            source: source.as_str().to_string(),
            occurred_at: crate::clock::now_rfc3339(),
            traceparent: None,
            data: serde_json::to_value(data).unwrap_or(serde_json::Value::Null),
        }
    }

    /// The payload as a consumer's own contract type.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, HandlerError> {
        serde_json::from_value(self.data.clone()).map_err(HandlerError::from)
    }
}
