//! A small scripted browser for flow tests: it loads pages, fills and submits their forms, and
//! follows redirects by hand until the user lands back at the tenant. It reads only what a
//! person would use — forms, inputs, buttons, links — by their element ids.
//!
//! Tests use `open` and `submit`, which panic on any failure. Tools that expect failures (the
//! crash test, whose hub dies mid-flow) use `try_open` and `try_submit`: every failure comes
//! back with the request that failed, so that it can be retried from there.

use std::collections::BTreeMap;

use reqwest::header::LOCATION;
use url::Url;

/// A loaded page.
#[derive(Debug, Clone)]
pub struct Page {
    pub url: Url,
    pub status: u16,
    pub body: String,
}

/// A form on a page: where it goes and the values it would send as it stands.
#[derive(Debug, Clone)]
pub struct Form {
    pub action: Url,
    pub method: String,
    pub fields: Vec<(String, String)>,
    /// Checkbox and radio inputs: (name, value, id).
    pub choices: Vec<(String, String, String)>,
}

fn attributes(tag: &str) -> BTreeMap<String, String> {
    let mut attrs = BTreeMap::new();
    let mut rest = tag;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq]
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("")
            .to_owned();
        let after = &rest[eq + 2..];
        let Some(end) = after.find('"') else { break };
        attrs.insert(name.to_lowercase(), unescape(&after[..end]));
        rest = &after[end + 1..];
    }
    attrs
}

fn unescape(raw: &str) -> String {
    raw.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The opening tags named `name` in `html`, as attribute maps, with their byte offsets.
fn tags(html: &str, name: &str) -> Vec<(usize, BTreeMap<String, String>)> {
    let open = format!("<{name}");
    html.match_indices(open.as_str())
        .filter_map(|(at, _)| {
            let rest = &html[at + open.len()..];
            if !rest.starts_with(|c: char| c.is_whitespace() || c == '>') {
                return None;
            }
            rest.find('>').map(|end| (at, attributes(&rest[..end])))
        })
        .collect()
}

impl Page {
    pub fn contains(&self, text: &str) -> bool {
        self.body.contains(text)
    }

    /// The `data-step` of a sandbox bank page.
    pub fn step(&self) -> Option<String> {
        tags(&self.body, "body")
            .into_iter()
            .next()
            .and_then(|(_, attrs)| attrs.get("data-step").cloned())
    }

    /// The form with element id `id`, or the form containing the element with that id.
    pub fn form(&self, id: &str) -> Option<Form> {
        let (start, attrs) = tags(&self.body, "form").into_iter().find(|(at, attrs)| {
            attrs.get("id").is_some_and(|x| x == id) || {
                let end = self.body[*at..]
                    .find("</form>")
                    .map_or(self.body.len(), |e| at + e);
                self.body[*at..end].contains(&format!("id=\"{id}\""))
            }
        })?;
        let end = self.body[start..]
            .find("</form>")
            .map_or(self.body.len(), |e| start + e);
        let inner = &self.body[start..end];
        let action = self
            .url
            .join(attrs.get("action").map_or("", String::as_str))
            .ok()?;
        let method = attrs
            .get("method")
            .cloned()
            .unwrap_or_else(|| "get".into())
            .to_lowercase();
        let mut fields = Vec::new();
        let mut choices = Vec::new();
        for (_, input) in tags(inner, "input") {
            let Some(name) = input.get("name").cloned() else {
                continue;
            };
            let value = input.get("value").cloned().unwrap_or_default();
            match input.get("type").map(String::as_str) {
                Some("checkbox" | "radio") => {
                    choices.push((name, value, input.get("id").cloned().unwrap_or_default()));
                }
                _ => fields.push((name, value)),
            }
        }
        // A button with a name sends its value, as the one pressed.
        for (_, button) in tags(inner, "button") {
            if let (Some(name), Some(value)) = (button.get("name"), button.get("value")) {
                fields.push((name.clone(), value.clone()));
            }
        }
        Some(Form {
            action,
            method,
            fields,
            choices,
        })
    }

    /// The `href` of the link with element id `id`.
    pub fn link(&self, id: &str) -> Option<Url> {
        tags(&self.body, "a")
            .into_iter()
            .find(|(_, attrs)| attrs.get("id").is_some_and(|x| x == id))
            .and_then(|(_, attrs)| attrs.get("href").and_then(|h| self.url.join(h).ok()))
    }
}

impl Form {
    /// Sets (or adds) a field.
    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.fields.retain(|(n, _)| n != name);
        self.fields.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Ticks the first choice of each name: one account, whether checkboxes or radios.
    pub fn choose_first(mut self) -> Self {
        let mut seen: Vec<&str> = Vec::new();
        let mut picked = Vec::new();
        for (name, value, _) in &self.choices {
            if !seen.contains(&name.as_str()) {
                seen.push(name);
                picked.push((name.clone(), value.clone()));
            }
        }
        self.fields.extend(picked);
        self
    }

    /// Ticks every checkbox (all accounts, say).
    pub fn check_all(mut self) -> Self {
        let ticked: Vec<(String, String)> = self
            .choices
            .iter()
            .map(|(n, v, _)| (n.clone(), v.clone()))
            .collect();
        self.fields.extend(ticked);
        self
    }
}

/// Where following stopped.
#[derive(Debug, Clone)]
pub enum Landing {
    /// A page on one of the hosts the browser follows.
    Page(Page),
    /// A redirect off those hosts: where the user leaves (back to the tenant, or to the bank
    /// when only the hub's host is followed).
    Left(Url),
}

/// Why a step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// Nobody listened (the hub was down).
    Connect,
    Timeout,
    /// The connection broke or the answer could not be read (the hub died mid-answer).
    Transport,
    /// A redirect without a usable `Location`, or too many redirects.
    Protocol,
}

/// A step that failed, and the request that failed: retrying `url` with `method` repeats it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: FailureKind,
    pub method: String,
    pub url: Url,
    pub detail: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} on {} {}: {}",
            self.kind,
            self.method,
            self.url.path(),
            self.detail
        )
    }
}

/// What kind of failure a request error is.
pub fn kind_of(err: &reqwest::Error) -> FailureKind {
    if err.is_timeout() {
        FailureKind::Timeout
    } else if err.is_connect() {
        FailureKind::Connect
    } else {
        FailureKind::Transport
    }
}

/// The query of a URL as a map.
pub fn query_of(url: &Url) -> BTreeMap<String, String> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[derive(Debug, Clone)]
pub struct Browser {
    http: reqwest::Client,
    /// Hosts (host:port) whose redirects are followed; anything else is where the user leaves.
    hosts: Vec<String>,
}

fn host_of(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

impl Browser {
    /// A browser that follows redirects within `urls`' hosts (the hub's and the bank's).
    pub fn new(urls: &[&str]) -> Self {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("browser client");
        Self::with_client(http, urls)
    }

    /// Follows redirects within the hosts of `urls`, on `http` (whose redirect policy must be
    /// `none`).
    pub fn with_client(http: reqwest::Client, urls: &[&str]) -> Self {
        let hosts = urls
            .iter()
            .filter_map(|u| Url::parse(u).ok())
            .map(|u| host_of(&u))
            .collect();
        Self { http, hosts }
    }

    async fn follow(
        &self,
        mut response: reqwest::Response,
        method: &str,
    ) -> Result<Landing, Failure> {
        let mut method = method.to_owned();
        for _ in 0..20 {
            let url = response.url().clone();
            if response.status().is_redirection() {
                let Some(location) = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                else {
                    return Err(Failure {
                        kind: FailureKind::Protocol,
                        method,
                        url,
                        detail: format!("{} without a Location", response.status()),
                    });
                };
                if !self.hosts.contains(&host_of(&location)) {
                    return Ok(Landing::Left(location));
                }
                method = "GET".to_owned();
                response = self.get_response(&location).await?;
                continue;
            }
            let status = response.status().as_u16();
            let body = response.text().await.map_err(|e| Failure {
                kind: kind_of(&e),
                method: method.clone(),
                url: url.clone(),
                detail: format!("reading the page: {e}"),
            })?;
            return Ok(Landing::Page(Page { url, status, body }));
        }
        Err(Failure {
            kind: FailureKind::Protocol,
            method,
            url: response.url().clone(),
            detail: "more than 20 redirects".to_owned(),
        })
    }

    async fn get_response(&self, url: &Url) -> Result<reqwest::Response, Failure> {
        self.http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| Failure {
                kind: kind_of(&e),
                method: "GET".to_owned(),
                url: url.clone(),
                detail: e.to_string(),
            })
    }

    /// Loads `url` and follows where it leads.
    pub async fn try_open(&self, url: &Url) -> Result<Landing, Failure> {
        let response = self.get_response(url).await?;
        self.follow(response, "GET").await
    }

    /// Submits `form` and follows where it leads.
    pub async fn try_submit(&self, form: &Form) -> Result<Landing, Failure> {
        let (method, request) = if form.method == "post" {
            (
                "POST",
                self.http.post(form.action.clone()).form(&form.fields),
            )
        } else {
            let mut url = form.action.clone();
            url.query_pairs_mut().extend_pairs(form.fields.iter());
            ("GET", self.http.get(url))
        };
        let response = request.send().await.map_err(|e| Failure {
            kind: kind_of(&e),
            method: method.to_owned(),
            url: form.action.clone(),
            detail: e.to_string(),
        })?;
        self.follow(response, method).await
    }

    /// Walks a connect link as the sandbox bank's `username` would: picks `bank` on the hub's
    /// page, signs in at the bank (password `sandbox`, code `123456`) and shares every account.
    /// Returns the query the tenant's redirect URI was given (`status`, `reason`, …).
    pub async fn link_through(
        &self,
        connect_url: &Url,
        bank: &str,
        username: &str,
    ) -> Result<BTreeMap<String, String>, String> {
        const MAX_PAGES: usize = 10;
        let mut landing = self
            .try_open(connect_url)
            .await
            .map_err(|f| f.to_string())?;
        for _ in 0..MAX_PAGES {
            let page = match landing {
                Landing::Left(back) => return Ok(query_of(&back)),
                Landing::Page(page) => page,
            };
            let form = sandbox_link_form(&page, bank, username).ok_or_else(|| {
                format!(
                    "unexpected page while linking: HTTP {} at {} (step {:?})",
                    page.status,
                    page.url.path(),
                    page.step()
                )
            })?;
            landing = self.try_submit(&form).await.map_err(|f| f.to_string())?;
        }
        Err(format!("linking took more than {MAX_PAGES} pages"))
    }

    pub async fn open(&self, url: &str) -> Landing {
        let url = Url::parse(url).expect("a URL to open");
        self.try_open(&url)
            .await
            .unwrap_or_else(|failure| panic!("{failure}"))
    }

    pub async fn submit(&self, form: &Form) -> Landing {
        self.try_submit(form)
            .await
            .unwrap_or_else(|failure| panic!("{failure}"))
    }
}

/// The form to submit on a page of a link through the sandbox bank: the hub's bank button, then
/// the bank's login, one-time code and account choice.
pub fn sandbox_link_form(page: &Page, bank: &str, username: &str) -> Option<Form> {
    if let Some(form) = page.form(&format!("bank-{bank}")) {
        return Some(form);
    }
    match page.step().as_deref() {
        Some("login") => page
            .form("login-form")
            .map(|f| f.set("username", username).set("password", "sandbox")),
        Some("otp") => page.form("otp-form").map(|f| f.set("otp", "123456")),
        Some("accounts") => page.form("accounts-form").map(|f| f.check_all()),
        _ => None,
    }
}

impl Landing {
    pub fn page(self) -> Page {
        match self {
            Landing::Page(page) => page,
            Landing::Left(url) => panic!("expected a page, left for {url}"),
        }
    }

    pub fn left(self) -> Url {
        match self {
            Landing::Left(url) => url,
            Landing::Page(page) => panic!(
                "expected to leave, got {} ({}):\n{}",
                page.url, page.status, page.body
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: &str) -> Page {
        Page {
            url: Url::parse("http://127.0.0.1:1/pay/x").unwrap(),
            status: 200,
            body: body.to_owned(),
        }
    }

    #[test]
    fn forms_are_found_by_their_id_or_a_button_inside() {
        let p = page(
            r#"<body data-step="accounts"><form id="accounts-form" method="post" action="/b/sca">
               <input type="hidden" name="t" value="a&amp;b">
               <input type="radio" name="account" value="acc-1" id="account-acc-1">
               <input type="radio" name="account" value="acc-2" id="account-acc-2">
               <button id="submit">Go</button></form>
               <form method="post" action="/pay/x/start"><button id="pay">Pay</button></form>"#,
        );
        assert_eq!(p.step().as_deref(), Some("accounts"));
        let form = p.form("accounts-form").unwrap().choose_first();
        assert_eq!(form.action.as_str(), "http://127.0.0.1:1/b/sca");
        assert_eq!(form.method, "post");
        assert!(form.fields.contains(&("t".to_owned(), "a&b".to_owned())));
        assert!(
            form.fields
                .contains(&("account".to_owned(), "acc-1".to_owned()))
        );
        assert!(
            !form
                .fields
                .contains(&("account".to_owned(), "acc-2".to_owned()))
        );
        let pay = p.form("pay").unwrap();
        assert_eq!(pay.action.path(), "/pay/x/start");
        assert!(p.form("cancel").is_none());
    }
}
