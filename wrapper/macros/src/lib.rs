//! `#[ddlambda::handler]`: Datadog tracing for an `async fn(LambdaEvent<T>) -> Result<R, E>`.
//!
//! The function keeps its exact signature (so `service_fn(handler)` and direct calls in tests
//! still work); its body runs inside `::ddlambda::__private::Call`, which joins or starts the
//! invocation, catches a panic, and records the outcome. See `ddlambda::handler` (the module)
//! for how the event is seen.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, parse_macro_input};

/// Traces a Lambda handler: `aws.lambda`, inferred spans, span links, error tags on `Err` or
/// panic (the panic is re-raised), `http.status_code` from the response's `statusCode` for
/// API Gateway, ALB and function URL triggers. The signature is unchanged.
///
/// ```ignore
/// #[ddlambda::handler]
/// async fn handler(event: LambdaEvent<SqsEvent>) -> Result<(), lambda_runtime::Error> {
///     Ok(())
/// }
/// ```
#[proc_macro_attribute]
pub fn handler(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = TokenStream2::from(attr);
    let function = parse_macro_input!(item as ItemFn);
    match expand(attr, function.clone()) {
        Ok(tokens) => tokens.into(),
        // The function as written stays, so the error is the only one reported.
        Err(error) => {
            let mut tokens = error.to_compile_error();
            tokens.extend(quote!(#function));
            tokens.into()
        }
    }
}

fn expand(attr: TokenStream2, function: ItemFn) -> syn::Result<TokenStream2> {
    if !attr.is_empty() {
        return Err(syn::Error::new(
            attr.span(),
            "#[ddlambda::handler] takes no arguments (configure it with DD_* environment variables)",
        ));
    }
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "#[ddlambda::handler] goes on an `async fn`",
        ));
    }
    let ReturnType::Type(_, return_type) = &sig.output else {
        return Err(syn::Error::new(
            sig.ident.span(),
            "#[ddlambda::handler] functions return a `Result<_, _>`",
        ));
    };
    let mut inputs = sig.inputs.iter();
    let argument = match (inputs.next(), inputs.next()) {
        (Some(FnArg::Typed(argument)), None) => argument,
        (Some(FnArg::Receiver(receiver)), _) => {
            return Err(syn::Error::new(
                receiver.span(),
                "#[ddlambda::handler] does not support methods: use a free `async fn(LambdaEvent<T>)`",
            ));
        }
        (None, _) => {
            return Err(syn::Error::new(
                sig.paren_token.span.join(),
                "#[ddlambda::handler] functions take one argument, a `LambdaEvent<T>`",
            ));
        }
        (Some(_), Some(extra)) => {
            return Err(syn::Error::new(
                extra.span(),
                "#[ddlambda::handler] functions take one argument, a `LambdaEvent<T>`",
            ));
        }
    };
    let pattern = &argument.pat;
    let event_type = &argument.ty;
    let event = quote_spanned!(Span::mixed_site()=> __ddlambda_event);
    let call = quote_spanned!(Span::mixed_site()=> __ddlambda_call);

    let mut outer_sig = sig.clone();
    if let Some(FnArg::Typed(outer_argument)) = outer_sig.inputs.first_mut() {
        *outer_argument.pat = syn::parse_quote_spanned!(Span::mixed_site()=> __ddlambda_event);
    }

    let check_event = quote_spanned! {event_type.span()=>
        ::ddlambda::__private::assert_event::<#event_type>();
    };
    let typed = quote_spanned! {return_type.span()=>
        ::ddlambda::__private::typed::<#return_type, _>
    };

    Ok(quote! {
        #(#attrs)*
        #vis #outer_sig {
            #[allow(unused_imports)]
            use ::ddlambda::__private::{
                DescribeAny as _, DescribeDisplay as _, PayloadJson as _, PayloadOpaque as _,
                ResponseOpaque as _, ResponseStatus as _,
            };
            #check_event
            #[allow(clippy::needless_borrow)]
            let #call = ::ddlambda::__private::Call::begin(&#event, || {
                (&&::ddlambda::__private::Payload(
                    ::ddlambda::__private::HandlerEvent::payload(&#event),
                ))
                    .__ddlambda_json()
            });
            let __ddlambda_outcome = #call
                .run(#typed(async move {
                    let #pattern = #event;
                    #block
                }))
                .await;
            match __ddlambda_outcome {
                ::core::result::Result::Ok(result) => {
                    match ::ddlambda::__private::HandlerResult::into_result(result) {
                        ::core::result::Result::Ok(value) => {
                            #[allow(clippy::needless_borrow)]
                            let status =
                                (&&::ddlambda::__private::Response(&value)).__ddlambda_status();
                            #call.ok(status);
                            ::ddlambda::__private::HandlerResult::from_result(
                                ::core::result::Result::Ok(value),
                            )
                        }
                        ::core::result::Result::Err(error) => {
                            #[allow(clippy::needless_borrow)]
                            let described =
                                (&&::ddlambda::__private::ErrorRef(&error)).__ddlambda_describe();
                            #call.err(described);
                            ::ddlambda::__private::HandlerResult::from_result(
                                ::core::result::Result::Err(error),
                            )
                        }
                    }
                }
                ::core::result::Result::Err(panic) => #call.panicked(panic),
            }
        }
    })
}
