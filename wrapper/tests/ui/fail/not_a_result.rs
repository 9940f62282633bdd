use ddlambda::lambda_runtime::LambdaEvent;

#[ddlambda::handler]
async fn handler(_event: LambdaEvent<()>) -> String {
    String::new()
}

fn main() {}
