//! What the actors of a node have in common: an actor type generic over the container
//! runtime it drives, and running a blocking store call off the actor's worker.

/// An actor type generic over the container runtime it drives (its state holds the runtime).
macro_rules! runtime_actor {
    ($name:ident) => {
        #[doc = concat!("The ", stringify!($name), " actor, generic over the container runtime.")]
        #[derive(Debug)]
        pub struct $name<R>(std::marker::PhantomData<fn() -> R>);

        impl<R> Default for $name<R> {
            fn default() -> Self {
                Self(std::marker::PhantomData)
            }
        }
    };
}
pub(crate) use runtime_actor;

/// Run a blocking store call on the blocking pool (an actor must not block its worker);
/// a failure, of the call or of its task, is logged as `what` and gives `None`.
pub(crate) async fn off_worker<T, E>(
    what: impl std::fmt::Display,
    call: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Option<T>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    match tokio::task::spawn_blocking(call).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            tracing::error!("{what}: {e}");
            None
        }
        Err(e) => {
            tracing::error!("{what}: task failed: {e}");
            None
        }
    }
}
