//! Just enough HTML reading to follow the sandbox's SCA pages: the page's step, a form's action,
//! the checked boxes of a form, a link's target. The pages' element ids are the sandbox's
//! documented, stable interface.

/// The tag (`<…>`) that contains `needle`.
fn tag_around<'a>(html: &'a str, needle: &str) -> Option<&'a str> {
    let at = html.find(needle)?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    Some(&html[start..=end])
}

/// An attribute's value in one tag, with the entities the pages use decoded.
pub fn attr(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let end = start + tag[start..].find('"')?;
    Some(
        tag[start..end]
            .replace("&amp;", "&")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">"),
    )
}

/// `<body data-step="…">`.
pub fn step(html: &str) -> Option<String> {
    attr(tag_around(html, "data-step=")?, "data-step")
}

/// The `action` of `<form id="{id}">`.
pub fn form_action(html: &str, id: &str) -> Option<String> {
    attr(tag_around(html, &format!("id=\"{id}\""))?, "action")
}

/// The `href` of the element with `id`.
pub fn href(html: &str, id: &str) -> Option<String> {
    attr(tag_around(html, &format!("id=\"{id}\""))?, "href")
}

/// The text of the element with `id` (tags inside it stripped).
pub fn text(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = at + html[at..].find('>')? + 1;
    let end = start + html[start..].find("</")?;
    Some(html[start..end].trim().to_owned())
}

/// The values of the checked `input[name=…]` elements inside `<form id="{form_id}">`.
pub fn checked_values(html: &str, form_id: &str, name: &str) -> Vec<String> {
    let Some(at) = html.find(&format!("id=\"{form_id}\"")) else {
        return Vec::new();
    };
    let form = &html[at..at + html[at..].find("</form>").unwrap_or(html.len() - at)];
    form.split("<input")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            let tag = format!(" {tag}");
            let named = attr(&tag, "name").as_deref() == Some(name);
            let checked = tag.contains(" checked");
            (named && checked).then(|| attr(&tag, "value")).flatten()
        })
        .collect()
}

#[test]
fn reads_the_sandbox_page_shapes() {
    let html = r#"<body data-step="accounts" data-bank="sonnenbank"><form id="accounts-form" method="post" action="/b/sca/a?x=1&amp;y=2"><label><input type="checkbox" id="account-1" name="account" value="acc-1" checked> A</label><input type="checkbox" name="account" value="acc-2"><input type="checkbox" id="account-3" name="account" value="acc-3" checked></form><p id="error">Falsch</p><a id="return" href="https://hub/cb?state=s">zur&#252;ck</a>"#;
    assert_eq!(step(html).as_deref(), Some("accounts"));
    assert_eq!(
        form_action(html, "accounts-form").as_deref(),
        Some("/b/sca/a?x=1&y=2")
    );
    assert_eq!(
        checked_values(html, "accounts-form", "account"),
        ["acc-1", "acc-3"]
    );
    assert_eq!(text(html, "error").as_deref(), Some("Falsch"));
    assert_eq!(
        href(html, "return").as_deref(),
        Some("https://hub/cb?state=s")
    );
}
