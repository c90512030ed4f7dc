//! Customer service tickets.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    Customer,
    Agent,
    /// The automatic first answer.
    Assistant,
}

crate::codes! { Author, "message author" {
    Customer => "customer",
    Agent => "agent",
    Assistant => "assistant",
} }

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    Open,
    Answered,
    Closed,
}

crate::codes! { TicketStatus, "ticket status" {
    Open => "open",
    Answered => "answered",
    Closed => "closed",
} }

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketTopic {
    PaymentFailed,
    InsufficientBalance,
    WhereIsMyParcel,
    Refund,
    Customs,
    Other,
}

crate::codes! { TicketTopic, "ticket topic" {
    PaymentFailed => "payment_failed",
    InsufficientBalance => "insufficient_balance",
    WhereIsMyParcel => "where_is_my_parcel",
    Refund => "refund",
    Customs => "customs",
    Other => "other",
} }

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct TicketMessage {
    pub author: Author,
    pub body: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct Ticket {
    pub id: String,
    pub order_id: Option<String>,
    pub topic: TicketTopic,
    pub subject: String,
    pub status: TicketStatus,
    pub messages: Vec<TicketMessage>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct NewTicket {
    pub order_id: Option<String>,
    pub topic: TicketTopic,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct NewMessage {
    pub body: String,
}
