//! DRF `PageNumberPagination`: `?page=N&page_size=M` →
//! `{count, next, previous, results}` with absolute links.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Serialize;

use crate::error::Problem;
use crate::extract::{RequestUrl, query_map};

/// Default page size.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// Largest page size a client may ask for; larger requests are clamped.
pub const MAX_PAGE_SIZE: u64 = 100;

/// The page a client asked for, plus the URL to build links from.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// 1-based page number.
    pub page: u64,
    /// Items per page, 1..=100.
    pub page_size: u64,
    url: url::Url,
}

impl PageRequest {
    /// Parses `page` and `page_size` from `url`. A page that is not a
    /// positive integer is a 404 ("Invalid page."), as in DRF; a bad
    /// `page_size` falls back to the default; one over the cap is clamped.
    pub fn from_url(url: url::Url) -> Result<Self, Problem> {
        let params = query_map(url.query());
        let page = match params.get("page").map(String::as_str) {
            None | Some("") => 1,
            Some("last") => u64::MAX,
            Some(raw) => match raw.parse::<u64>() {
                Ok(n) if n >= 1 => n,
                _ => return Err(invalid_page()),
            },
        };
        let page_size = params
            .get("page_size")
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|n| *n > 0)
            .map_or(DEFAULT_PAGE_SIZE, |n| n.min(MAX_PAGE_SIZE));
        Ok(Self {
            page,
            page_size,
            url,
        })
    }

    /// SQL `LIMIT`.
    pub fn limit(&self) -> i64 {
        self.page_size as i64
    }

    /// SQL `OFFSET`. Only valid after [`PageRequest::resolve`] for `page=last`.
    pub fn offset(&self) -> i64 {
        (self.page.saturating_sub(1)).saturating_mul(self.page_size) as i64
    }

    /// Fixes `page=last` once the total is known and checks the page exists
    /// (page 1 always exists, even when empty).
    pub fn resolve(&mut self, count: u64) -> Result<(), Problem> {
        let pages = count.div_ceil(self.page_size).max(1);
        if self.page == u64::MAX {
            self.page = pages;
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
    fn page_size_is_capped_and_defaulted() {
        assert_eq!(req("?page_size=1000").expect("ok").page_size, MAX_PAGE_SIZE);
        assert_eq!(
            req("?page_size=abc").expect("ok").page_size,
            DEFAULT_PAGE_SIZE
        );
        assert_eq!(
            req("?page_size=0").expect("ok").page_size,
            DEFAULT_PAGE_SIZE
        );
    }

    #[test]
    fn invalid_or_out_of_range_pages_are_404() {
        assert_eq!(req("?page=0").expect_err("0").status, 404);
        assert_eq!(req("?page=-1").expect_err("neg").status, 404);
        assert_eq!(req("?page=x").expect_err("nan").status, 404);
        let mut r = req("?page=4&page_size=10").expect("parses");
        assert_eq!(r.resolve(25).expect_err("past end").status, 404);
        let mut empty = req("").expect("ok");
        empty.resolve(0).expect("page 1 of an empty list exists");
        let mut last = req("?page=last&page_size=10").expect("ok");
        last.resolve(25).expect("ok");
        assert_eq!(last.page, 3);
    }
}
