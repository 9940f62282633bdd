use ddlambda::lambda_runtime::{Error, LambdaEvent};

#[ddlambda::handler]
async fn handler(_event: LambdaEvent<()>, _extra: u32) -> Result<(), Error> {
    Ok(())
}

fn main() {}
