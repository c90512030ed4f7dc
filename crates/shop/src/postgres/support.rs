//! Customer service tickets in PostgreSQL.

use super::*;

fn ticket_messages(tx: &mut Tx<'_>, id: &str) -> R<Vec<TicketMessage>> {
    tx.query("SELECT author, body, at, seq FROM ticket_messages WHERE ticket_id = $1 ORDER BY seq", &[&id])?
        .iter()
        .map(|r| {
            let seq: i64 = r.try_get(3)?;
            let at = At::new(r, "ticket_messages", format!("{id} message {seq}"));
            Ok(TicketMessage { author: at.code(0)?, body: at.get(1)?, at: at.get(2)? })
        })
        .collect()
}

fn load_ticket(tx: &mut Tx<'_>, account_id: &str, id: &str) -> R<Option<Ticket>> {
    let row = tx.query_opt(
        "SELECT id, order_id, topic, subject, status, created_at, updated_at FROM tickets WHERE id = $1 AND account_id = $2",
        &[&id, &account_id],
    )?;
    let Some(r) = row else { return Ok(None) };
    let at = At::keyed(&r, "tickets", 0)?;
    let mut ticket = Ticket {
        order_id: at.get(1)?,
        topic: at.code(2)?,
        subject: at.get(3)?,
        status: at.code(4)?,
        messages: Vec::new(),
        created_at: at.get(5)?,
        updated_at: at.get(6)?,
        id: at.key().to_owned(),
    };
    ticket.messages = ticket_messages(tx, &ticket.id)?;
    Ok(Some(ticket))
}

fn insert_message(
    tx: &mut Tx<'_>,
    ticket_id: &str,
    seq: i64,
    author: Author,
    body: &str,
    at: DateTime<Utc>,
) -> R<()> {
    tx.execute(
        "INSERT INTO ticket_messages (ticket_id, seq, author, body, at) VALUES ($1,$2,$3,$4,$5)",
        &[&ticket_id, &seq, &author.as_str(), &body, &ts(at)],
    )?;
    Ok(())
}

impl SupportStore for PgStore {
    fn create_ticket(&self, t: &Ticket, account_id: &str) -> StoreResult<()> {
        self.with(|tx| {
            tx.execute(
                "INSERT INTO tickets (id, account_id, order_id, topic, subject, status, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$7)",
                &[&t.id, &account_id, &t.order_id, &t.topic.as_str(), &t.subject, &t.status.as_str(), &ts(t.created_at)],
            )?;
            for (i, m) in t.messages.iter().enumerate() {
                insert_message(tx, &t.id, i64::try_from(i).unwrap_or(0) + 1, m.author, &m.body, m.at)?;
            }
            Ok(())
        })
    }

    fn add_message(
        &self,
        ticket_id: &str,
        author: Author,
        body: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.with(|tx| {
            let seq: i64 = tx
                .query_one(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM ticket_messages WHERE ticket_id = $1",
                    &[&ticket_id],
                )?
                .try_get(0)?;
            insert_message(tx, ticket_id, seq, author, body, now)?;
            tx.execute("UPDATE tickets SET updated_at = $1 WHERE id = $2", &[&ts(now), &ticket_id])?;
            Ok(())
        })
    }

    fn ticket(&self, account_id: &str, id: &str) -> StoreResult<Option<Ticket>> {
        self.with(|tx| load_ticket(tx, account_id, id))
    }

    fn tickets(&self, account_id: &str) -> StoreResult<Vec<Ticket>> {
        self.with(|tx| {
            let ids: Vec<String> = tx
                .query("SELECT id FROM tickets WHERE account_id = $1 ORDER BY updated_at DESC, id DESC LIMIT 200", &[
                    &account_id,
                ])?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(t) = load_ticket(tx, account_id, &id)? {
                    out.push(t);
                }
            }
            Ok(out)
        })
    }

    fn set_ticket_status(&self, id: &str, status: TicketStatus, now: DateTime<Utc>) -> StoreResult<()> {
        self.with(|tx| {
            tx.execute(
                "UPDATE tickets SET status = $1, updated_at = $2 WHERE id = $3",
                &[&status.as_str(), &ts(now), &id],
            )?;
            Ok(())
        })
    }

    fn topic_of(&self, id: &str) -> StoreResult<Option<TicketTopic>> {
        self.with(|tx| {
            let Some(r) = tx.query_opt("SELECT topic FROM tickets WHERE id = $1", &[&id])? else {
                return Ok(None);
            };
            At::new(&r, "tickets", id).code(0).map(Some)
        })
    }
}
