use ddlambda::lambda_runtime::LambdaEvent;

#[ddlambda::handler]
async fn handler(_event: LambdaEvent<()>) {}

fn main() {}
