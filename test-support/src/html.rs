//! Reading the simulator's cashier page the way a browser follows it.

/// The action of the form whose button has this id, with HTML entities in it undone.
pub fn form_action(page: &str, button: &str) -> String {
    let at = page
        .find(&format!("id=\"{button}\""))
        .unwrap_or_else(|| panic!("no #{button} in {page}"));
    let start = page[..at].rfind("action=\"").expect("a form") + 8;
    let end = page[start..].find('"').expect("a closing quote");
    page[start..start + end].replace("&amp;", "&")
}
