//! The key of a code type: its samples, models and pool are all filed under it.

use std::sync::Arc;

/// `tenant/code`.
pub type CodeKey = Arc<str>;

/// The key of `code` of `tenant`.
pub fn code_key(tenant: &str, code: &str) -> CodeKey {
    Arc::from(format!("{tenant}/{code}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_then_code() {
        assert_eq!(&*code_key("acme", "resize"), "acme/resize");
    }
}
