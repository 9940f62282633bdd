use ddlambda::lambda_runtime::{Error, LambdaEvent};

struct Service;

impl Service {
    #[ddlambda::handler]
    async fn handler(&self, _event: LambdaEvent<()>) -> Result<(), Error> {
        Ok(())
    }
}

fn main() {}
