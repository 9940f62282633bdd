use ddlambda::lambda_runtime::Error;

#[ddlambda::handler]
async fn handler(event: String) -> Result<String, Error> {
    Ok(event)
}

fn main() {}
