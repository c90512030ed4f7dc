//! Tauri's build step for the bare reference page.

fn main() {
    tauri_build::build();
}
