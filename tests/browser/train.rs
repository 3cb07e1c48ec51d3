//! The training engine in the browser: the same learning check as natively.

use wasm_bindgen_test::*;

#[wasm_bindgen_test]
fn classification_loss_falls_and_accuracy_beats_chance() {
    let (first, last, accuracy) = crate::shared::train::classification_learns();
    web_sys::console::log_1(
        &format!("browser: loss {first:.3} -> {last:.3}, accuracy {accuracy:.3}").into(),
    );
}
