//! Loading: reading a config file (and the files it includes), resolving every section, and
//! the checks `promtool check config` makes beyond parsing.

use super::*;

/// A glob is only allowed in the last path element, as Prometheus requires.
pub(crate) fn check_glob_path(p: &str) -> bool {
    let dir = Path::new(p)
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    !dir.contains(['*', '?', '['])
}

impl Config {
    /// Read and parse `path`; relative paths inside resolve against its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Io {
            path: path.display().to_string(),
            err,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        Self::parse_named(&text, &base, &path.display().to_string())
    }

    /// Parse YAML text; relative paths resolve against `base_dir`.
    pub fn parse(yaml: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        Self::parse_named(yaml, base_dir, "<config>")
    }

    pub(crate) fn parse_named(
        yaml: &str,
        base_dir: &Path,
        file: &str,
    ) -> Result<Config, ConfigError> {
        raw::start_secret_spans();
        let raw: RawConfig = if yaml.trim().is_empty() {
            RawConfig::default()
        } else {
            from_yaml(yaml, file)?
        };
        let secret_spans = raw::take_secret_spans();
        let ctx = Ctx::new(file, base_dir);
        let g = global(&ctx, &raw.global)?;
        let mut notes = field_warnings(&raw);
        let mut rule_files = Vec::new();
        for rf in raw.rule_files.iter().flatten().flatten() {
            if !check_glob_path(rf) {
                return Err(ctx.err("rule_files", format!("invalid rule file path {rf:?}")));
            }
            rule_files.push(ctx.path(rf));
        }
        let mut scrape_config_files = Vec::new();
        for sf in raw.scrape_config_files.iter().flatten().flatten() {
            if !check_glob_path(sf) {
                return Err(ctx.err(
                    "scrape_config_files",
                    format!("invalid scrape config file path {sf:?}"),
                ));
            }
            scrape_config_files.push(ctx.path(sf));
        }
        let mut scrape_configs: Vec<ScrapeConfig> = Vec::new();
        // Job name -> where it was first defined, for the duplicate message.
        let mut jobs: HashMap<String, String> = HashMap::new();
        for (i, s) in raw.scrape_configs.iter().flatten().enumerate() {
            let f = format!("scrape_configs[{i}]");
            let Some(s) = s else {
                return Err(ctx.err(f, "empty or null scrape config section"));
            };
            let _at = ctx.at(s);
            let sc = scrape_config(&ctx, &f, &s.value, &g, &mut notes)?;
            if jobs.contains_key(&sc.job_name) {
                return Err(ctx.err(
                    f,
                    format!(
                        "found multiple scrape configs with job name {:?}",
                        sc.job_name
                    ),
                ));
            }
            jobs.insert(sc.job_name.clone(), "main config file".into());
            scrape_configs.push(sc);
        }
        // scrape_config_files: each file may hold only scrape configs; job names stay unique.
        for pattern in &scrape_config_files {
            let mut files: Vec<PathBuf> = glob::glob(pattern)
                .map_err(|e| {
                    ctx.err(
                        "scrape_config_files",
                        format!("invalid pattern {pattern:?}: {e}"),
                    )
                })?
                .filter_map(Result::ok)
                .collect();
            files.sort();
            for path in files {
                let text = std::fs::read_to_string(&path).map_err(|err| ConfigError::Io {
                    path: path.display().to_string(),
                    err,
                })?;
                let name = path.display().to_string();
                let sub: RawScrapeConfigFile = if text.trim().is_empty() {
                    RawScrapeConfigFile::default()
                } else {
                    from_yaml(&text, &name)?
                };
                let sub_base = path.parent().map(Path::to_path_buf).unwrap_or_default();
                let mut sctx = Ctx::new(&name, &sub_base);
                sctx.included = true;
                for (i, s) in sub.scrape_configs.iter().flatten().enumerate() {
                    let f = format!("scrape_configs[{i}]");
                    let Some(s) = s else {
                        return Err(sctx.err(f, "empty or null scrape config section"));
                    };
                    let _at = sctx.at(s);
                    let sc = scrape_config(&sctx, &f, &s.value, &g, &mut notes)?;
                    if let Some(first) = jobs.get(&sc.job_name) {
                        return Err(sctx.err(
                            f,
                            format!(
                                "found multiple scrape configs with job name {:?}, first found in {first}",
                                sc.job_name
                            ),
                        ));
                    }
                    jobs.insert(sc.job_name.clone(), format!("{name:?}"));
                    scrape_configs.push(sc);
                }
            }
        }
        let mut cfg = Config {
            alerting: alerting(&ctx, &raw.alerting, g.name_validation)?,
            remote_write: remote_write(&ctx, &raw.remote_write)?,
            remote_read: remote_read(&ctx, &raw.remote_read)?,
            storage: storage(&ctx, &raw.storage)?,
            otlp: crate::otlp::otlp(&ctx, &raw.otlp, g.name_validation)?,
            global: g,
            rule_files,
            scrape_config_files,
            scrape_configs,
            source: yaml.to_string(),
            secret_spans,
            warnings: Vec::new(),
            base_dir: base_dir.to_path_buf(),
            field_notes: notes,
        };
        let mut w = cfg.unimplemented();
        w.extend(
            cfg.field_notes
                .iter()
                .filter(|u| matches!(u, Unimplemented::Harmless(_)))
                .cloned(),
        );
        for (section, present) in [
            ("tracing", raw.tracing.is_some()),
            ("runtime", raw.runtime.is_some()),
        ] {
            if present {
                w.push(Unimplemented::Harmless(format!(
                    "{section}: accepted for compatibility and not used by vigil (it has no effect on what is scraped, stored or queried)"
                )));
            }
        }
        cfg.warnings.extend(w.iter().map(Unimplemented::to_string));
        Ok(cfg)
    }

    /// Sections that are configured but that vigil does not carry out yet, each with what it
    /// means for the user. Logged loudly at start-up and reload, printed by `vigil check
    /// config`, and shown on the rules and alerts pages.
    pub fn unimplemented(&self) -> Vec<Unimplemented> {
        let mut out = Vec::new();
        for (i, am) in self.alerting.alertmanagers.iter().enumerate() {
            for u in &am.unsupported {
                let what = if u == "sigv4" {
                    "vigil does not sign requests with AWS SigV4 yet: alerts sent there are unsigned"
                } else {
                    "vigil does not support this discovery yet: no Alertmanager is found through it"
                };
                out.push(Unimplemented::Alerting(format!(
                    "alerting.alertmanagers[{i}].{u}: {what}"
                )));
            }
        }
        if self.storage.retention_percentage.is_some() {
            out.push(Unimplemented::Storage(
                "storage.tsdb.retention.percentage: vigil does not apply a retention by share of the disk yet: only retention.time and retention.size limit what is kept".into(),
            ));
        }
        out.extend(
            self.field_notes
                .iter()
                .filter(|u| !matches!(u, Unimplemented::Harmless(_)))
                .cloned(),
        );
        out
    }
}

impl Config {
    /// Name `u` as not running (logged at load and on reload as `NOT RUNNING`), for what
    /// only the server knows: how a field fares with its flags.
    pub fn add_not_running(&mut self, u: Unimplemented) {
        self.warnings.push(u.to_string());
        self.field_notes.push(u);
    }

    /// Agent mode (`--agent`) runs no rules, sends no alerts and answers no queries: the
    /// sections for them are refused, in Prometheus's words and order.
    pub fn check_agent(&self) -> Result<(), String> {
        if !self.alerting.alertmanagers.is_empty()
            || !self.alerting.alert_relabel_configs.is_empty()
        {
            return Err("field alerting is not allowed in agent mode".into());
        }
        if !self.rule_files.is_empty() {
            return Err("field rule_files is not allowed in agent mode".into());
        }
        if !self.remote_read.is_empty() {
            return Err("field remote_read is not allowed in agent mode".into());
        }
        Ok(())
    }
}

impl Config {
    /// What `promtool check config` checks beyond parsing: every referenced file exists.
    pub fn check_files(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |what: &str, p: &Option<String>| {
            if let Some(p) = p
                && !Path::new(p).is_file()
            {
                problems.push(format!("error checking {what} {p:?}: no such file"));
            }
        };
        let mut http = |h: &HttpClientConfig| {
            check("client cert file", &h.tls_config.cert_file);
            check("client key file", &h.tls_config.key_file);
            check("CA file", &h.tls_config.ca_file);
            if let Some(b) = &h.basic_auth {
                check("password file", &b.password_file);
                check("username file", &b.username_file);
            }
            if let Some(a) = &h.authorization {
                check("credentials file", &a.credentials_file);
            }
            if let Some(o) = &h.oauth2 {
                check("client secret file", &o.client_secret_file);
                check("client cert file", &o.tls_config.cert_file);
                check("client key file", &o.tls_config.key_file);
                check("CA file", &o.tls_config.ca_file);
            }
        };
        for sc in &self.scrape_configs {
            http(&sc.http_client);
            for k in &sc.kubernetes_sd_configs {
                http(&k.http_client);
            }
        }
        for r in &self.remote_write {
            http(&r.http_client);
        }
        for r in &self.remote_read {
            http(&r.http_client);
        }
        for am in &self.alerting.alertmanagers {
            http(&am.http_client);
        }
        for rf in &self.rule_files {
            let matches: Vec<PathBuf> = glob::glob(rf)
                .map(|g| g.filter_map(Result::ok).collect())
                .unwrap_or_default();
            if matches.is_empty() && !rf.contains(['*', '?', '[']) {
                problems.push(format!("{rf:?} does not point to an existing file"));
            }
        }
        problems
    }
}
