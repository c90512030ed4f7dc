//! What a window manager's close button does: send `WM_DELETE_WINDOW` to a top-level window. The
//! tests' Xvfb display has no window manager, so this stands in for the buyer clicking ×.

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{AtomEnum, ClientMessageEvent, ConnectionExt, EventMask, Window};

use crate::{E2eError, Result};

fn x11<E: std::fmt::Display>(e: E) -> E2eError {
    E2eError::Protocol(format!("X11: {e}"))
}

/// Asks every window on `display` whose title contains `title` to close; returns how many.
pub fn request_close(display: &str, title: &str) -> Result<usize> {
    let (conn, screen) = x11rb::connect(Some(display)).map_err(x11)?;
    let root = conn.setup().roots.get(screen).map(|s| s.root).ok_or_else(|| x11("no screen"))?;
    let atom = |name: &[u8]| -> Result<u32> {
        Ok(conn.intern_atom(false, name).map_err(x11)?.reply().map_err(x11)?.atom)
    };
    let (protocols, delete, net_name, utf8) =
        (atom(b"WM_PROTOCOLS")?, atom(b"WM_DELETE_WINDOW")?, atom(b"_NET_WM_NAME")?, atom(b"UTF8_STRING")?);
    let mut stack: Vec<Window> = vec![root];
    let mut closed = 0;
    while let Some(w) = stack.pop() {
        // WebKit creates and destroys helper windows all the time: one that vanished between
        // listing and reading (BadWindow in the reply) is skipped, not an error.
        let Ok(tree) = conn.query_tree(w).map_err(x11)?.reply() else { continue };
        stack.extend(tree.children);
        let mut name = Vec::new();
        for (prop, ty) in [(net_name, utf8), (AtomEnum::WM_NAME.into(), AtomEnum::STRING.into())] {
            let Ok(r) = conn.get_property(false, w, prop, ty, 0, 1024).map_err(x11)?.reply() else {
                continue;
            };
            if !r.value.is_empty() {
                name = r.value;
                break;
            }
        }
        if String::from_utf8_lossy(&name).contains(title) {
            let event = ClientMessageEvent::new(32, w, protocols, [delete, 0, 0, 0, 0]);
            conn.send_event(false, w, EventMask::NO_EVENT, event).map_err(x11)?;
            closed += 1;
        }
    }
    conn.flush().map_err(x11)?;
    Ok(closed)
}

/// What clicking another program does: the keyboard focus leaves every window of the app (it
/// goes to the root window), so the app is no longer in front.
pub fn focus_elsewhere(display: &str) -> Result<()> {
    use x11rb::protocol::xproto::InputFocus;
    let (conn, screen) = x11rb::connect(Some(display)).map_err(x11)?;
    let root = conn.setup().roots.get(screen).map(|s| s.root).ok_or_else(|| x11("no screen"))?;
    conn.set_input_focus(InputFocus::POINTER_ROOT, root, x11rb::CURRENT_TIME).map_err(x11)?;
    conn.flush().map_err(x11)?;
    conn.get_input_focus().map_err(x11)?.reply().map_err(x11)?;
    Ok(())
}
