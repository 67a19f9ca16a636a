//! Live updates across server instances (PostgreSQL only). Every store of a case sends
//! `NOTIFY fieldcase_cases` inside its transaction ([`crate::storage::case_docs::CASES_CHANNEL`]), which
//! PostgreSQL delivers to every listening session when, and only if, that transaction commits.
//! Each instance keeps one dedicated connection that `LISTEN`s on the channel, on a background
//! thread of its own (the blocking client must not run on the async executor), and bumps the
//! vault's change signal ([`crate::storage::case_docs::CaseVault::changed`]) for each notification, so that
//! an open case page hears of a phone's sync whichever instance received it.
//!
//! The signal only wakes the live pages: they then read the case's sequence number from the
//! database, so a lost or duplicated notification costs nothing but a read, and the pages still
//! re-check every few seconds (the web layer's live module). When the connection breaks, the thread
//! reconnects (once a second) and bumps the signal once, for anything it may have missed. It
//! ends when the vault is gone (the server stopped).

use std::sync::{Arc, Weak};
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use crate::error::ServerError;
use crate::storage::case_docs::CASES_CHANNEL;
use crate::storage::case_docs::CaseVault;
use crate::storage::sql::PgUrl;

/// How long the listener waits for a notification before it checks whether the server is
/// still running.
const POLL: Duration = Duration::from_millis(500);
/// How long it waits before it reconnects after the connection broke.
const RECONNECT: Duration = Duration::from_secs(1);

/// Starts the listener thread for `vault` on the database at `url`.
pub(crate) fn spawn(url: &PgUrl, vault: &Arc<CaseVault>) -> Result<(), ServerError> {
    let url = url.clone();
    let vault = Arc::downgrade(vault);
    std::thread::Builder::new()
        .name("fieldcase-listen".to_owned())
        .spawn(move || listen(&url, &vault))
        .map_err(ServerError::io("starting the notification listener"))?;
    Ok(())
}

fn listen(url: &PgUrl, vault: &Weak<CaseVault>) {
    let mut first = true;
    while vault.strong_count() > 0 {
        // With TLS as the URL says, like every other connection of the server.
        let mut client = match url.connect() {
            Ok(client) => client,
            Err(_) => {
                tracing::warn!("live updates: cannot reach the database; retrying");
                std::thread::sleep(RECONNECT);
                continue;
            }
        };
        if client
            .batch_execute(&format!("LISTEN {CASES_CHANNEL}"))
            .is_err()
        {
            std::thread::sleep(RECONNECT);
            continue;
        }
        if !first {
            // Changes made while the connection was down were not heard: wake the pages once.
            if let Some(vault) = vault.upgrade() {
                vault.changed(0);
            }
        }
        first = false;
        loop {
            let next = client.notifications().timeout_iter(POLL).next();
            match next {
                Ok(Some(note)) => {
                    let Some(vault) = vault.upgrade() else { return };
                    vault.changed(note.payload().parse().unwrap_or(0));
                }
                Ok(None) => {
                    if vault.strong_count() == 0 {
                        return;
                    }
                    if client.is_closed() {
                        break;
                    }
                }
                Err(_) => {
                    tracing::warn!("live updates: the listening connection broke; reconnecting");
                    break;
                }
            }
        }
    }
}
