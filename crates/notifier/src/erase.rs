//! Erasing a visitor: the stored rows, and the `.eml` files written for
//! their emails when no SMTP server is configured.

use hookline_storage::diesel::QueryResult;
use hookline_storage::retention::{self, Deleted};
use hookline_storage::{notifications, DbConnection};
use serde::Serialize;

use crate::mailer::written_file;

/// What erasing a visitor deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Erased {
    #[serde(flatten)]
    pub rows: Deleted,
    /// `.eml` files of the deleted emails removed from the outbox folder.
    pub email_files: usize,
}

/// Deletes everything stored about a visitor, and the `.eml` files of the
/// emails about them.
pub fn erase_visitor(conn: &mut DbConnection, visitor_key: &str) -> QueryResult<Erased> {
    let responses = notifications::responses_for_visitor(conn, visitor_key)?;
    let rows = retention::erase_visitor(conn, visitor_key)?;
    let mut email_files = 0;
    for path in responses.iter().filter_map(|r| written_file(r)) {
        match std::fs::remove_file(path) {
            Ok(()) => email_files += 1,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(%error, file = %path.display(), "cannot delete an erased visitor's email file")
            }
        }
    }
    Ok(Erased { rows, email_files })
}
