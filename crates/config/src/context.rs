//! The validation context: the file being checked, its directory, and the position of the
//! item being checked, so every error can name a field and a line.

use super::*;

/// Validation context: the file, its directory, and the positions of the items being
/// checked (innermost last) so errors can name a line.
pub(crate) struct Ctx<'a> {
    pub(crate) file: &'a str,
    pub(crate) base: &'a Path,
    pub(crate) locs: RefCell<Vec<(u64, u64)>>,
    /// A file named by `scrape_config_files` rather than the main config.
    pub(crate) included: bool,
}

/// Pops the position [`Ctx::at`] pushed when the item's check ends.
pub(crate) struct At<'a>(&'a RefCell<Vec<(u64, u64)>>, bool);

impl Drop for At<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.borrow_mut().pop();
        }
    }
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(file: &'a str, base: &'a Path) -> Self {
        Ctx {
            file,
            base,
            locs: RefCell::new(Vec::new()),
            included: false,
        }
    }

    /// Errors raised while the returned guard lives point at `item`.
    pub(crate) fn at<T>(&self, item: &Spanned<T>) -> At<'_> {
        let l = item.referenced;
        let known = l.line() > 0;
        if known {
            self.locs.borrow_mut().push((l.line(), l.column()));
        }
        At(&self.locs, known)
    }

    pub(crate) fn err(&self, field: impl Into<String>, msg: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.file.to_string(),
            field: field.into(),
            line: self.locs.borrow().last().copied(),
            msg: msg.into(),
        }
    }

    /// Resolve a file path against the config's directory, as Prometheus's `SetDirectory`.
    pub(crate) fn path(&self, p: &str) -> String {
        if p.is_empty() || Path::new(p).is_absolute() {
            p.to_string()
        } else {
            self.base.join(p).display().to_string()
        }
    }

    pub(crate) fn duration(
        &self,
        field: &str,
        v: &Option<Text>,
    ) -> Result<Option<Duration>, ConfigError> {
        match v {
            None => Ok(None),
            Some(t) => parse_duration(&t.0)
                .map(Some)
                .map_err(|e| self.err(field, e)),
        }
    }
}
