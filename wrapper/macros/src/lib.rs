//! `#[ddlambda::handler]`.

use proc_macro::TokenStream;

/// Instruments a Lambda handler. (Placeholder until the wrapper lands.)
#[proc_macro_attribute]
pub fn handler(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
