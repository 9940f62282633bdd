use ddlambda::lambda_runtime::{Error, LambdaEvent, service_fn};

/// A payload that is not `Serialize`: context-only extraction, still compiles.
#[derive(serde::Deserialize)]
struct Opaque {
    _n: u32,
}

#[derive(Debug)]
struct MyError;

impl std::fmt::Display for MyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("my error")
    }
}

#[ddlambda::handler]
async fn opaque(event: LambdaEvent<Opaque>) -> Result<u32, MyError> {
    Ok(event.payload._n)
}

#[ddlambda::handler]
pub(crate) async fn destructured(
    LambdaEvent { payload, context: _ }: LambdaEvent<serde_json::Value>,
) -> Result<serde_json::Value, Error> {
    if payload.is_null() {
        return Err("null".into());
    }
    let n: u64 = payload["n"].as_u64().ok_or("no n")?;
    Ok(serde_json::json!(n))
}

fn main() {
    let _ = service_fn(opaque);
    let _ = service_fn(destructured);
}
