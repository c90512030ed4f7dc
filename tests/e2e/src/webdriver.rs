//! The small part of W3C WebDriver the tests use, over plain HTTP.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::{E2eError, Result};

/// The W3C web element identifier key.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long waits last unless a test says otherwise; generous because a cold debug build on two
/// cores starts the embedded shop and sandbox before the first page.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// One launch of the app.
#[derive(Debug)]
pub struct Session {
    http: reqwest::Client,
    base: String,
    id: String,
}

/// A found element.
#[derive(Debug, Clone)]
pub struct Element {
    id: String,
}

impl Element {
    /// The element as a script argument (`arguments[n]` in [`Session::execute`]).
    pub fn to_json(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }
}

impl Session {
    pub(crate) async fn new(driver: &str, app: &Path) -> Result<Self> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "wry",
                    "tauri:options": { "application": app.display().to_string() }
                }
            }
        });
        let v = send(http.post(format!("{driver}/session")).json(&caps)).await?;
        let id = v["sessionId"]
            .as_str()
            .ok_or_else(|| E2eError::Protocol(format!("no sessionId in {v}")))?
            .to_owned();
        Ok(Session { http, base: format!("{driver}/session/{id}"), id })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    async fn get(&self, path: &str) -> Result<Value> {
        send(self.http.get(format!("{}{path}", self.base))).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        send(self.http.post(format!("{}{path}", self.base)).json(&body)).await
    }

    /// Ends the session, which closes the app.
    pub async fn close(self) -> Result<()> {
        send(self.http.delete(&self.base)).await.map(|_| ())
    }

    pub async fn find(&self, css: &str) -> Result<Option<Element>> {
        match self.post("/element", json!({"using": "css selector", "value": css})).await {
            Ok(v) => Ok(Some(element(&v)?)),
            Err(E2eError::WebDriver { error, .. }) if error == "no such element" => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let v = self.post("/elements", json!({"using": "css selector", "value": css})).await?;
        v.as_array()
            .ok_or_else(|| E2eError::Protocol(format!("elements: {v}")))?
            .iter()
            .map(element)
            .collect()
    }

    /// Waits until `css` matches a displayed element.
    pub async fn wait_for(&self, css: &str) -> Result<Element> {
        self.wait_for_within(css, DEFAULT_WAIT).await
    }

    pub async fn wait_for_within(&self, css: &str, timeout: Duration) -> Result<Element> {
        let start = Instant::now();
        loop {
            if let Some(e) = self.find(css).await?
                && self.displayed(&e).await.unwrap_or(false)
            {
                return Ok(e);
            }
            if start.elapsed() > timeout {
                return Err(E2eError::Timeout { what: format!("`{css}`"), waited: timeout });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until a script returns a truthy value, and returns it.
    pub async fn wait_until(&self, what: &str, script: &str, timeout: Duration) -> Result<Value> {
        let start = Instant::now();
        loop {
            let v = self.execute(script, json!([])).await?;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.to_string() != "0",
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return Ok(v);
            }
            if start.elapsed() > timeout {
                return Err(E2eError::Timeout { what: what.to_owned(), waited: timeout });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn displayed(&self, e: &Element) -> Result<bool> {
        Ok(self.get(&format!("/element/{}/displayed", e.id)).await?.as_bool().unwrap_or(false))
    }

    /// Opens a route of the app (`/settings`, `/orders/HO…`).
    pub async fn go(&self, route: &str) -> Result<()> {
        self.execute("location.hash = arguments[0]; return true;", json!([format!("#{route}")]))
            .await
            .map(|_| ())
    }

    /// Waits for the element `css` and clicks it.
    pub async fn click_on(&self, css: &str) -> Result<()> {
        let e = self.wait_for(css).await?;
        self.click(&e).await
    }

    pub async fn click(&self, e: &Element) -> Result<()> {
        self.post(&format!("/element/{}/click", e.id), json!({})).await.map(|_| ())
    }

    pub async fn text(&self, e: &Element) -> Result<String> {
        let v = self.get(&format!("/element/{}/text", e.id)).await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    pub async fn attribute(&self, e: &Element, name: &str) -> Result<Option<String>> {
        let v = self.get(&format!("/element/{}/attribute/{name}", e.id)).await?;
        Ok(v.as_str().map(str::to_owned))
    }

    pub async fn clear(&self, e: &Element) -> Result<()> {
        self.post(&format!("/element/{}/clear", e.id), json!({})).await.map(|_| ())
    }

    pub async fn type_text(&self, e: &Element, text: &str) -> Result<()> {
        self.post(&format!("/element/{}/value", e.id), json!({ "text": text })).await.map(|_| ())
    }

    /// Replaces an input's value.
    pub async fn fill(&self, css: &str, text: &str) -> Result<()> {
        let e = self.wait_for(css).await?;
        self.clear(&e).await?;
        self.type_text(&e, text).await
    }

    /// Runs a script in the page (`arguments` are `args`) and returns its result.
    pub async fn execute(&self, script: &str, args: Value) -> Result<Value> {
        self.post("/execute/sync", json!({ "script": script, "args": args })).await
    }

    /// A PNG of the window's viewport.
    ///
    /// WebKitGTK's WebDriver takes the snapshot after the page's next paint, and an idle page under
    /// Xvfb does not paint: the command would wait forever. So a 1-pixel, almost transparent element
    /// keeps the page painting until the snapshot is taken, and is removed afterwards.
    pub async fn screenshot(&self) -> Result<Vec<u8>> {
        self.execute(
            "const d = document.createElement('div');
             d.id = '__e2e_repaint';
             d.style.cssText = 'position:fixed;left:0;top:0;width:1px;height:1px;opacity:0.01;pointer-events:none';
             document.body.appendChild(d);
             let n = 0;
             const tick = () => {
               if (!d.isConnected || ++n > 1200) return d.remove();
               d.style.opacity = n % 2 ? '0.01' : '0.02';
               requestAnimationFrame(tick);
             };
             requestAnimationFrame(tick);
             return true;",
            json!([]),
        )
        .await?;
        let shot = self.get("/screenshot").await;
        self.execute("document.getElementById('__e2e_repaint')?.remove(); return true;", json!([])).await?;
        let v = shot?;
        let b64 = v.as_str().ok_or_else(|| E2eError::Protocol("screenshot is not a string".into()))?;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| E2eError::Protocol(format!("screenshot is not base64: {e}")))
    }

    pub async fn window_handles(&self) -> Result<Vec<String>> {
        let v = self.get("/window/handles").await?;
        Ok(v.as_array()
            .map(|a| a.iter().filter_map(|h| h.as_str().map(str::to_owned)).collect())
            .unwrap_or_default())
    }

    pub async fn window_handle(&self) -> Result<String> {
        let v = self.get("/window").await?;
        v.as_str().map(str::to_owned).ok_or_else(|| E2eError::Protocol(format!("window: {v}")))
    }

    /// Closes the current window, as its close button would.
    pub async fn close_window(&self) -> Result<()> {
        send(self.http.delete(format!("{}/window", self.base))).await.map(|_| ())
    }

    pub async fn switch_to(&self, handle: &str) -> Result<()> {
        self.post("/window", json!({ "handle": handle })).await.map(|_| ())
    }

    /// Sets the window's size in CSS pixels.
    pub async fn set_size(&self, width: u32, height: u32) -> Result<()> {
        self.post("/window/rect", json!({ "width": width, "height": height })).await.map(|_| ())
    }

    /// Moves and resizes the window (WebDriver's window rect).
    pub async fn set_rect(&self, x: i32, y: i32, width: u32, height: u32) -> Result<()> {
        self.post("/window/rect", json!({ "x": x, "y": y, "width": width, "height": height }))
            .await
            .map(|_| ())
    }

    /// The window's position and size: `[x, y, width, height]`.
    pub async fn rect(&self) -> Result<[i64; 4]> {
        let v = self.get("/window/rect").await?;
        let n = |k: &str| v[k].as_i64().unwrap_or(i64::MIN);
        Ok([n("x"), n("y"), n("width"), n("height")])
    }

    pub async fn url(&self) -> Result<String> {
        let v = self.get("/url").await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Presses keys (WebDriver key codes such as `\u{E004}` for Tab) on the focused element.
    pub async fn press(&self, keys: &str) -> Result<()> {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|c| {
                [
                    json!({"type": "keyDown", "value": c.to_string()}),
                    json!({"type": "keyUp", "value": c.to_string()}),
                ]
            })
            .collect();
        self.post("/actions", json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}))
            .await
            .map(|_| ())
    }
}

fn element(v: &Value) -> Result<Element> {
    v[ELEMENT_KEY]
        .as_str()
        .map(|id| Element { id: id.to_owned() })
        .ok_or_else(|| E2eError::Protocol(format!("not an element: {v}")))
}

async fn send(req: reqwest::RequestBuilder) -> Result<Value> {
    let r = req.send().await?;
    let status = r.status();
    let body: Value = r.json().await?;
    let value = body.get("value").cloned().unwrap_or(Value::Null);
    if status.is_success() {
        Ok(value)
    } else {
        Err(E2eError::WebDriver {
            error: value["error"].as_str().unwrap_or("unknown error").to_owned(),
            message: value["message"].as_str().unwrap_or_default().to_owned(),
        })
    }
}
