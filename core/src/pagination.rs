//! Keyset pagination for Relay connections.
//!
//! A cursor is the base64 of the last row's id. Ids are UUIDv7, so ordering by id is ordering
//! by creation and a page is one indexed range scan however deep the client pages: no OFFSET.

use crate::config::ApiSettings;
use crate::error::{AppError, AppResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

/// A validated page request: `limit` rows after `after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u64,
    pub after: Option<Uuid>,
}

impl PageRequest {
    /// `first` must be 1..=page_size_max; a bad cursor is a VALIDATION error.
    pub fn new(first: Option<i32>, after: Option<&str>, limits: &ApiSettings) -> AppResult<Self> {
        let limit = match first {
            None => limits.page_size_default,
            Some(n) if n >= 1 && (n as u32) <= limits.page_size_max => n as u32,
            Some(n) => {
                return Err(AppError::validation(
                    "first",
                    format!(
                        "first must be between 1 and {} (api.page_size_max); got {n}",
                        limits.page_size_max
                    ),
                ));
            }
        };
        let after = after.map(decode_cursor).transpose()?;
        Ok(Self {
            limit: u64::from(limit),
            after,
        })
    }
}

/// One page of rows plus whether more follow.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched (the extra row tells `has_next_page`).
    pub fn from_overfetch(mut rows: Vec<T>, limit: u64) -> Self {
        let has_next_page = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        Self {
            items: rows,
            has_next_page,
        }
    }
}

pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

pub fn decode_cursor(cursor: &str) -> AppResult<Uuid> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| Uuid::from_slice(&b).ok())
        .ok_or_else(|| {
            AppError::validation("after", "after is not a cursor returned by this connection")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_is_capped_and_cursors_round_trip() {
        let limits = ApiSettings::default();
        assert_eq!(
            PageRequest::new(None, None, &limits).map(|p| p.limit).ok(),
            Some(20)
        );
        assert!(PageRequest::new(Some(0), None, &limits).is_err());
        assert!(PageRequest::new(Some(101), None, &limits).is_err());
        assert!(PageRequest::new(Some(10), Some("!!"), &limits).is_err());
        let id = Uuid::now_v7();
        let p = PageRequest::new(Some(5), Some(&encode_cursor(id)), &limits).expect("page");
        assert_eq!(p.after, Some(id));
        let page = Page::from_overfetch(vec![1, 2, 3], 2);
        assert_eq!(page.items, vec![1, 2]);
        assert!(page.has_next_page);
    }
}
