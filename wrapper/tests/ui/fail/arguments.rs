use ddlambda::lambda_runtime::{Error, LambdaEvent};

#[ddlambda::handler(service = "x")]
async fn handler(_event: LambdaEvent<()>) -> Result<(), Error> {
    Ok(())
}

fn main() {}
