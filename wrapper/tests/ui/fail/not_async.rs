use ddlambda::lambda_runtime::{Error, LambdaEvent};

#[ddlambda::handler]
fn handler(_event: LambdaEvent<()>) -> Result<(), Error> {
    Ok(())
}

fn main() {}
