//! DRF `PageNumberPagination`: `?page=N&page_size=M` →
//! `{count, next, previous, results}` with absolute links.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Serialize;

use crate::error::Problem;
use crate::extract::{RequestUrl, query_map};

/// Default page size.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// Largest page size a client may ask for; larger is a 400.
pub const MAX_PAGE_SIZE: u64 = 100;

/// The page a client asked for, plus the URL to build links from.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// 1-based page number.
    pub page: u64,
    /// Items per page, 1..=100.
    pub page_size: u64,
    last: bool,
    url: url::Url,
}

/// The OpenAPI schema of `?page=`: a positive integer or `last`.
pub fn page_schema() -> serde_json::Value {
    serde_json::json!({"oneOf": [
        {"type": "integer", "minimum": 1},
        {"type": "string", "enum": ["last"]},
    ], "default": 1})
}

/// The OpenAPI schema of `?page_size=`.
pub fn page_size_schema() -> serde_json::Value {
    serde_json::json!({"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE})
}

impl PageRequest {
    /// Parses `page` and `page_size` from `url` (the last of a repeated
    /// one wins, as in DRF). `page` is a positive integer or `last`;
    /// `page_size` is 1..=100; anything else is a 400 naming the
    /// parameter. A page past the end is a 404 ("Invalid page.") once
    /// [`PageRequest::resolve`] knows the count — even one too large
    /// for 64 bits.
    pub fn from_url(url: url::Url) -> Result<Self, Problem> {
        let params = query_map(url.query());
        let (page, last) = match params.get("page").map(String::as_str) {
            None => (1, false),
            Some("last") => (1, true),
            Some(raw) if positive_integer(raw) => (raw.parse::<u64>().unwrap_or(u64::MAX), false),
            Some(_) => {
                return Err(Problem::field(
                    "page",
                    "A positive integer (or `last`) is required.",
                ));
            }
        };
        let page_size = match params.get("page_size").map(String::as_str) {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                .ok_or_else(|| {
                    Problem::field(
                        "page_size",
                        format!("An integer between 1 and {MAX_PAGE_SIZE} is required."),
                    )
                })?,
        };
        Ok(Self {
            page,
            page_size,
            last,
            url,
        })
    }

    /// SQL `LIMIT`.
    pub fn limit(&self) -> i64 {
        self.page_size as i64
    }

    /// SQL `OFFSET`. Only valid after [`PageRequest::resolve`].
    pub fn offset(&self) -> i64 {
        i64::try_from((self.page.saturating_sub(1)).saturating_mul(self.page_size))
            .unwrap_or(i64::MAX)
    }

    /// Fixes `page=last` once the total is known and checks the page exists
    /// (page 1 always exists, even when empty).
    pub fn resolve(&mut self, count: u64) -> Result<(), Problem> {
        let pages = count.div_ceil(self.page_size).max(1);
        if self.last {
            self.page = pages;
            self.last = false;
        }
        if self.page > pages {
            return Err(invalid_page());
        }
        Ok(())
    }

    /// Wraps one page of results with links.
    pub fn page<T: Serialize>(&self, count: u64, results: Vec<T>) -> Page<T> {
        let pages = count.div_ceil(self.page_size).max(1);
        let next = (self.page < pages).then(|| self.link(Some(self.page + 1)));
        let previous = match self.page {
            1 => None,
            2 => Some(self.link(None)),
            n => Some(self.link(Some(n - 1))),
        };
        Page {
            count,
            next,
            previous,
            results,
        }
    }

    fn link(&self, page: Option<u64>) -> String {
        let mut url = self.url.clone();
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        {
            let mut q = url.query_pairs_mut();
            q.clear();
            q.extend_pairs(kept);
            if let Some(p) = page {
                q.append_pair("page", &p.to_string());
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        url.to_string()
    }
}

/// ASCII digits, not all zeros (`0`, `-1`, `+1`, `1.0`, `` are not).
fn positive_integer(raw: &str) -> bool {
    !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) && raw.bytes().any(|b| b != b'0')
}

fn invalid_page() -> Problem {
    let mut p = Problem::not_found();
    p.detail = "Invalid page.".into();
    p
}

impl<S: Send + Sync> FromRequestParts<S> for PageRequest {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let RequestUrl(url) = RequestUrl::from_request_parts(parts, state).await?;
        PageRequest::from_url(url)
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// Total items across pages.
    pub count: u64,
    /// Absolute URL of the next page, or null.
    pub next: Option<String>,
    /// Absolute URL of the previous page, or null.
    pub previous: Option<String>,
    /// This page's items.
    pub results: Vec<T>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(q: &str) -> Result<PageRequest, Problem> {
        PageRequest::from_url(
            url::Url::parse(&format!("http://shop.test/api/v1/products/{q}")).expect("url"),
        )
    }

    #[test]
    fn first_page_links_forward_only() {
        let r = req("?category=books").expect("ok");
        let page = r.page(45, vec![0; 20]);
        assert_eq!(page.count, 45);
        assert_eq!(
            page.next.as_deref(),
            Some("http://shop.test/api/v1/products/?category=books&page=2")
        );
        assert_eq!(page.previous, None);
    }

    #[test]
    fn second_page_links_back_without_page_param() {
        let r = req("?page=2&page_size=10").expect("ok");
        assert_eq!(r.offset(), 10);
        let page = r.page(25, vec![0; 10]);
        assert_eq!(
            page.previous.as_deref(),
            Some("http://shop.test/api/v1/products/?page_size=10")
        );
        assert_eq!(
            page.next.as_deref(),
            Some("http://shop.test/api/v1/products/?page_size=10&page=3")
        );
    }

    #[test]
    fn last_page_has_no_next() {
        let mut r = req("?page=3&page_size=10").expect("ok");
        r.resolve(25).expect("exists");
        let page = r.page(25, vec![0; 5]);
        assert_eq!(page.next, None);
        assert_eq!(
            page.previous.as_deref(),
            Some("http://shop.test/api/v1/products/?page_size=10&page=2")
        );
    }

    #[test]
    fn page_size_is_bounded() {
        assert_eq!(req("").expect("ok").page_size, DEFAULT_PAGE_SIZE);
        assert_eq!(req("?page_size=100").expect("ok").page_size, 100);
        assert_eq!(req("?page_size=1").expect("ok").page_size, 1);
        for bad in [
            "1000",
            "101",
            "0",
            "-1",
            "abc",
            "",
            "18446744073709551616",
            "1.5",
        ] {
            let err = req(&format!("?page_size={bad}")).expect_err(bad);
            assert_eq!(err.status, 400, "{bad}");
            assert!(
                err.errors.expect("field").contains_key("page_size"),
                "{bad}"
            );
        }
        assert_eq!(
            req("?page_size=500&page_size=7")
                .expect("last wins")
                .page_size,
            7
        );
    }

    #[test]
    fn invalid_pages_are_400_and_pages_past_the_end_404() {
        for bad in ["0", "00", "-1", "x", "", "+1", "1.0", "lastt"] {
            let err = req(&format!("?page={bad}")).expect_err(bad);
            assert_eq!(err.status, 400, "{bad}");
            assert!(err.errors.expect("field").contains_key("page"), "{bad}");
        }
        let mut r = req("?page=4&page_size=10").expect("parses");
        assert_eq!(r.resolve(25).expect_err("past end").status, 404);
        for huge in [
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999",
        ] {
            let mut r = req(&format!("?page={huge}")).expect(huge);
            assert_eq!(r.resolve(25).expect_err(huge).status, 404, "{huge}");
            assert!(r.offset() >= 0);
        }
        let mut empty = req("").expect("ok");
        empty.resolve(0).expect("page 1 of an empty list exists");
        let mut last = req("?page=last&page_size=10").expect("ok");
        last.resolve(25).expect("ok");
        assert_eq!(last.page, 3);
        assert_eq!(last.offset(), 20);
        let mut empty_last = req("?page=last").expect("ok");
        empty_last
            .resolve(0)
            .expect("the last page of nothing is page 1");
        assert_eq!(empty_last.page, 1);
    }
}
