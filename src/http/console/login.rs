//! Logging in with an operator token, and out.

use std::time::Instant;

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use time::OffsetDateTime;

use super::auth::{Session, COOKIE};
use super::{layout, peer, Console, On};

pub async fn form(On(console): On) -> Response {
    login_page(&console, None, StatusCode::OK)
}

fn login_page(console: &Console, error: Option<&str>, status: StatusCode) -> Response {
    let content = html! {
        div class="card" {
            h1 { "Log in" }
            @if let Some(error) = error { p class="error" role="alert" { (error) } }
            form method="post" action="/console/login" {
                p {
                    label { "Console token" br;
                        input type="password" name="token" autocomplete="current-password"
                            required autofocus;
                    }
                }
                button type="submit" { "Log in" }
            }
        }
    };
    let mut response = layout::page(&console.csp, "Log in", None, content);
    *response.status_mut() = status;
    response
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: SecretString,
}

/// Checks the token (after the brake's delay for this address) and sets the session cookie.
pub async fn submit(On(console): On, request: Request) -> Response {
    let console = &*console;
    let address = peer(request.extensions());
    let delay = console.brake.delay(address, Instant::now());
    tokio::time::sleep(delay).await;
    let Ok(Form(form)) = Form::<LoginForm>::from_request(request, &()).await else {
        return login_page(console, Some("Enter a token."), StatusCode::BAD_REQUEST);
    };
    let Some(operator) = console.operators.by_token(form.token.expose_secret()) else {
        console.brake.failed(address, Instant::now());
        tracing::warn!(%address, "console login refused: unknown token");
        return login_page(
            console,
            Some("That token is not valid."),
            StatusCode::UNAUTHORIZED,
        );
    };
    console.brake.succeeded(address);
    let (value, session) = console
        .operators
        .open_session(operator, OffsetDateTime::now_utc());
    tracing::info!(operator = %session.operator, "console login");
    let cookie = session_cookie(console, value, Some(session.expires));
    ([(header::SET_COOKIE, cookie)], Redirect::to("/console")).into_response()
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// Ends the session in this browser (the cookie is cleared; it would expire anyway).
pub async fn logout(On(console): On, session: Session, Form(form): Form<CsrfForm>) -> Response {
    let console = &*console;
    if !session.csrf_matches(&form.csrf) {
        return StatusCode::FORBIDDEN.into_response();
    }
    tracing::info!(operator = %session.operator, "console logout");
    let cookie = session_cookie(console, String::new(), None);
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/console/login"),
    )
        .into_response()
}

/// `Set-Cookie` for a session (or, with no expiry, one that removes it): HttpOnly,
/// SameSite=Strict, the console's path only, Secure over HTTPS.
fn session_cookie(
    console: &Console,
    value: String,
    expires: Option<OffsetDateTime>,
) -> HeaderValue {
    let mut cookie = cookie::Cookie::build((COOKIE, value))
        .path("/console")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(console.secure_cookies);
    cookie = match expires {
        Some(at) => cookie.expires(at),
        None => cookie.max_age(cookie::time::Duration::ZERO),
    };
    HeaderValue::from_str(&cookie.build().to_string()).expect("a cookie is a header value")
}
