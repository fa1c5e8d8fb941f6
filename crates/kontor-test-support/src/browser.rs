//! A small scripted browser for flow tests: it loads pages, fills and submits their forms, and
//! follows redirects by hand until the user lands back at the tenant. It reads only what a
//! person would use — forms, inputs, buttons, links — by their element ids.

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
    /// A redirect off those hosts (back to the tenant).
    Left(Url),
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
        let hosts = urls
            .iter()
            .filter_map(|u| Url::parse(u).ok())
            .map(|u| host_of(&u))
            .collect();
        Self { http, hosts }
    }

    async fn follow(&self, mut response: reqwest::Response) -> Landing {
        for _ in 0..20 {
            let url = response.url().clone();
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .expect("redirect without a location");
                if !self.hosts.contains(&host_of(&location)) {
                    return Landing::Left(location);
                }
                response = self.http.get(location).send().await.expect("GET");
                continue;
            }
            let status = response.status().as_u16();
            let body = response.text().await.expect("page body");
            return Landing::Page(Page { url, status, body });
        }
        panic!("too many redirects");
    }

    pub async fn open(&self, url: &str) -> Landing {
        self.follow(self.http.get(url).send().await.expect("GET"))
            .await
    }

    pub async fn submit(&self, form: &Form) -> Landing {
        let request = if form.method == "post" {
            self.http.post(form.action.clone()).form(&form.fields)
        } else {
            let mut url = form.action.clone();
            url.query_pairs_mut().extend_pairs(form.fields.iter());
            self.http.get(url)
        };
        self.follow(request.send().await.expect("submit")).await
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
