//! Customer service tickets in SQLite.

use super::*;

fn ticket_messages(c: &Connection, id: &str) -> Result<Vec<TicketMessage>, ApiError> {
    Ok(c.prepare("SELECT author, body, at, seq FROM ticket_messages WHERE ticket_id = ?1 ORDER BY seq")?
        .query_map([id], |r| {
            let key = format!("{id} message {}", r.get::<_, i64>(3)?);
            in_row("ticket_messages", &key, r, || {
                Ok(TicketMessage { author: r.get(0)?, body: r.get(1)?, at: r.get::<_, Stamp>(2)?.0 })
            })
        })?
        .collect::<Result<_, _>>()?)
}

fn load_ticket(c: &Connection, account_id: &str, id: &str) -> Result<Option<Ticket>, ApiError> {
    let row = c
        .query_row(
            "SELECT id, order_id, topic, subject, status, created_at, updated_at FROM tickets WHERE id = ?1 AND account_id = ?2",
            [id, account_id],
            |r| {
                let id: String = r.get(0)?;
                in_row("tickets", &id, r, || {
                    Ok(Ticket {
                        order_id: r.get(1)?,
                        topic: r.get(2)?,
                        subject: r.get(3)?,
                        status: r.get(4)?,
                        messages: Vec::new(),
                        created_at: r.get::<_, Stamp>(5)?.0,
                        updated_at: r.get::<_, Stamp>(6)?.0,
                        id: id.clone(),
                    })
                })
            },
        )
        .optional()?;
    let Some(mut ticket) = row else { return Ok(None) };
    ticket.messages = ticket_messages(c, &ticket.id)?;
    Ok(Some(ticket))
}

impl SupportStore for SqliteStore {
    fn create_ticket(&self, t: &Ticket, account_id: &str) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO tickets (id, account_id, order_id, topic, subject, status, created_at, updated_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?7)",
                params![t.id, account_id, t.order_id, t.topic, t.subject, t.status, ts(t.created_at)],
            )?;
            for (i, m) in t.messages.iter().enumerate() {
                tx.execute(
                    "INSERT INTO ticket_messages (ticket_id, seq, author, body, at) VALUES (?1,?2,?3,?4,?5)",
                    params![t.id, i64::try_from(i).unwrap_or(0) + 1, m.author, m.body, ts(m.at)],
                )?;
            }
            tx.commit()?;
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
        self.with(|c| {
            let tx = c.transaction()?;
            let seq: i64 = tx.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM ticket_messages WHERE ticket_id = ?1",
                [ticket_id],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO ticket_messages (ticket_id, seq, author, body, at) VALUES (?1,?2,?3,?4,?5)",
                params![ticket_id, seq, author, body, ts(now)],
            )?;
            tx.execute("UPDATE tickets SET updated_at = ?1 WHERE id = ?2", params![ts(now), ticket_id])?;
            tx.commit()?;
            Ok(())
        })
    }

    fn ticket(&self, account_id: &str, id: &str) -> StoreResult<Option<Ticket>> {
        self.with(|c| load_ticket(c, account_id, id))
    }

    fn tickets(&self, account_id: &str) -> StoreResult<Vec<Ticket>> {
        self.with(|c| {
            let ids: Vec<String> = c
                .prepare("SELECT id FROM tickets WHERE account_id = ?1 ORDER BY updated_at DESC LIMIT 200")?
                .query_map([account_id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(t) = load_ticket(c, account_id, &id)? {
                    out.push(t);
                }
            }
            Ok(out)
        })
    }

    fn set_ticket_status(&self, id: &str, status: TicketStatus, now: DateTime<Utc>) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE tickets SET status = ?1, updated_at = ?2 WHERE id = ?3",
                params![status, ts(now), id],
            )?;
            Ok(())
        })
    }

    fn topic_of(&self, id: &str) -> StoreResult<Option<TicketTopic>> {
        self.with(|c| {
            Ok(c.query_row("SELECT topic FROM tickets WHERE id = ?1", [id], |r| {
                in_row("tickets", id, r, || r.get(0))
            })
            .optional()?)
        })
    }
}
