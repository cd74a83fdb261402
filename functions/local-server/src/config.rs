//! Settings from the environment. Every variable is optional; an empty one counts as unset.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PORT` | `8080` | TCP port (`0` picks a free one) |
//! | `HOST` | `127.0.0.1` | address or name to listen on |
//! | `DATA_DIR` | `.data` | directory of the SQLite file (created if missing) |
//! | `DYNAMODB_ENDPOINT` | unset | use DynamoDB at this endpoint instead of SQLite |
//! | `TABLE_NAME` | `replicache` | the DynamoDB table (created if missing) |
//! | `ALLOWED_ORIGINS` | `*` | comma-separated origins allowed by CORS and to open poke sockets |
//! | `CLIENT_DIR` | `client/dist` | the built web client, served at `/` when present |
//! | `LOG_FORMAT` | `text` | `text` or `json` |
//! | `COOKIE_SECRET_FILE` | `DATA_DIR/cookie-secret` | the key pull cookies are signed with (created if missing) |
//! | `REQUEST_TIMEOUT_MS` | `25000` | a request not answered by then gets a 503 (retry) |
//! | `MAX_SOCKETS_PER_SPACE` | `1000` | poke sockets one space may have open; more get a 429 |
//! | `AUTH_MODE` | `none` | `none` (every request is anonymous) or `jwt` (bearer JWTs) |
//! | `JWT_SECRET_FILE` | `DATA_DIR/jwt-secret` | `jwt` mode: the HS256 development secret (created if missing) |
//! | `JWKS_FILE` | unset | `jwt` mode: verify with these public keys (RS256/ES256 by `kid`) instead |
//! | `JWT_ISSUER` | unset | `jwt` mode: the `iss` every token must carry |
//! | `JWT_AUDIENCE` | unset | `jwt` mode: the `aud` (or `client_id`) every token must carry |
//! | `DEV_TOKEN_TTL_SECS` | `3600` | lifetime of the development sign-in's tokens |
//! | `ANSWER_BUCKET` | unset | on DynamoDB: pull answers over `ANSWER_LIMIT_BYTES` go to this S3 bucket (created if missing) and the client is redirected (303) to a presigned URL |
//! | `S3_ENDPOINT` | `DYNAMODB_ENDPOINT` | the S3 endpoint of `ANSWER_BUCKET` (moto serves both) |
//! | `ANSWER_LIMIT_BYTES` | `6029312` | answers whose body (gzipped when the client accepts it) is larger are redirected |
//! | `GC_INTERVAL_SECS` | `3600` | how often garbage collection runs (`0`: never) |
//! | `TOMBSTONE_RETENTION_SECS` | `2592000` (30 days) | deleted entries older than this are removed; older cookies get a reset |
//! | `CLIENT_IDLE_SECS` | `2592000` (30 days) | clients that pushed nothing for this long are removed |

use axum::http::HeaderValue;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_DATA_DIR: &str = ".data";
pub const DEFAULT_TABLE_NAME: &str = "replicache";
pub const DEFAULT_CLIENT_DIR: &str = "client/dist";
pub const DEFAULT_REQUEST_TIMEOUT: Duration = sync_core::api::DEFAULT_REQUEST_TIMEOUT;
pub const DEFAULT_MAX_SOCKETS_PER_SPACE: usize = 1000;
pub const DEFAULT_DEV_TOKEN_TTL: Duration = Duration::from_secs(3600);
pub const DEFAULT_GC_INTERVAL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub storage: StorageConfig,
    pub allowed_origins: AllowedOrigins,
    pub client_dir: PathBuf,
    pub log_format: LogFormat,
    pub cookie_secret_file: PathBuf,
    pub request_timeout: Duration,
    pub max_sockets_per_space: usize,
    pub auth: AuthConfig,
    /// Where oversized answers go (on DynamoDB only); `None`: every answer direct.
    pub answers: Option<AnswerConfig>,
    /// Garbage collection's schedule and ages; `None`: never.
    pub gc: Option<GcConfig>,
}

/// `GC_INTERVAL_SECS` and the ages of [`sync_core::gc::GcPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcConfig {
    pub interval: Duration,
    pub policy: sync_core::gc::GcPolicy,
}

/// `ANSWER_BUCKET` and its settings: the local stand-in of the pull function's answer
/// bucket, so that the redirect of large pulls runs locally too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerConfig {
    pub bucket: String,
    pub endpoint: String,
    pub limit: usize,
}

/// Who may sync what: `AUTH_MODE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthConfig {
    /// Every request is anonymous; every space is open to anyone with its ID.
    None,
    /// Every API request carries a bearer JWT whose subject is the user.
    Jwt(JwtConfig),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    pub keys: JwtKeys,
    /// The `iss` every token must carry, when set.
    pub issuer: Option<String>,
    /// The `aud` (or Cognito's `client_id`) every token must carry, when set.
    pub audience: Option<String>,
    /// Lifetime of the development sign-in's tokens.
    pub dev_token_ttl: Duration,
}

/// What tokens are verified with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKeys {
    /// An HS256 secret in this file (created when missing); enables the development
    /// sign-in, which issues tokens signed with it.
    DevSecret(PathBuf),
    /// The public keys of an identity provider (a JSON Web Key Set) in this file.
    Jwks(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// The embedded store, one file in `data_dir`.
    Sqlite {
        data_dir: PathBuf,
    },
    DynamoDb {
        endpoint: String,
        table: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    Any,
    /// Exact origins, such as `http://localhost:5173`.
    List(Vec<HeaderValue>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{name} is not valid UTF-8")]
    NotUnicode { name: &'static str },
    #[error("PORT must be a number from 0 to 65535, not {0:?}")]
    Port(String),
    #[error("ALLOWED_ORIGINS: {0:?} is not an origin such as http://localhost:5173")]
    Origin(String),
    #[error("LOG_FORMAT must be `text` or `json`, not {0:?}")]
    LogFormat(String),
    #[error("REQUEST_TIMEOUT_MS must be a number of milliseconds from 1, not {0:?}")]
    RequestTimeout(String),
    #[error("MAX_SOCKETS_PER_SPACE must be a number from 1, not {0:?}")]
    MaxSockets(String),
    #[error("AUTH_MODE must be `none` or `jwt`, not {0:?}")]
    AuthMode(String),
    #[error("DEV_TOKEN_TTL_SECS must be a number of seconds from 1, not {0:?}")]
    DevTokenTtl(String),
    #[error("ANSWER_BUCKET needs DynamoDB (DYNAMODB_ENDPOINT): on SQLite every answer is direct")]
    AnswerBucketWithoutDynamoDb,
    #[error("ANSWER_LIMIT_BYTES must be a number of bytes, not {0:?}")]
    AnswerLimit(String),
    #[error("{name} must be a number of seconds{}, not {raw:?}", if *.zero_allowed { "" } else { " from 1" })]
    Seconds {
        name: &'static str,
        raw: String,
        zero_allowed: bool,
    },
    #[error("set JWT_SECRET_FILE or JWKS_FILE, not both")]
    TwoKeySources,
    #[error("{0} is a setting of AUTH_MODE=jwt: set AUTH_MODE=jwt, or unset {0}")]
    JwtSettingWithoutJwt(&'static str),
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::NotUnicode { name }),
        })
    }

    /// Reads the settings through `lookup`, which answers a variable's value or `None`.
    pub fn from_lookup(
        lookup: impl Fn(&'static str) -> Result<Option<String>, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let get = |name| -> Result<Option<String>, ConfigError> {
            Ok(lookup(name)?
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()))
        };
        let port = match get("PORT")? {
            None => DEFAULT_PORT,
            Some(raw) => raw.parse().map_err(|_| ConfigError::Port(raw))?,
        };
        let data_dir: PathBuf = get("DATA_DIR")?
            .unwrap_or_else(|| DEFAULT_DATA_DIR.to_owned())
            .into();
        let storage = match get("DYNAMODB_ENDPOINT")? {
            Some(endpoint) => StorageConfig::DynamoDb {
                endpoint,
                table: get("TABLE_NAME")?.unwrap_or_else(|| DEFAULT_TABLE_NAME.to_owned()),
            },
            None => StorageConfig::Sqlite {
                data_dir: data_dir.clone(),
            },
        };
        let cookie_secret_file = get("COOKIE_SECRET_FILE")?
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join(crate::cookie_secret::DEFAULT_FILE_NAME));
        let request_timeout = match get("REQUEST_TIMEOUT_MS")? {
            None => DEFAULT_REQUEST_TIMEOUT,
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis)
                .ok_or(ConfigError::RequestTimeout(raw))?,
        };
        let max_sockets_per_space = match get("MAX_SOCKETS_PER_SPACE")? {
            None => DEFAULT_MAX_SOCKETS_PER_SPACE,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ConfigError::MaxSockets(raw))?,
        };
        let auth = auth_config(&get, &data_dir)?;
        let answers = match (get("ANSWER_BUCKET")?, &storage) {
            (None, _) => None,
            (Some(_), StorageConfig::Sqlite { .. }) => {
                return Err(ConfigError::AnswerBucketWithoutDynamoDb);
            }
            (Some(bucket), StorageConfig::DynamoDb { endpoint, .. }) => Some(AnswerConfig {
                bucket,
                endpoint: get("S3_ENDPOINT")?.unwrap_or_else(|| endpoint.clone()),
                limit: match get("ANSWER_LIMIT_BYTES")? {
                    None => sync_core::spill::DEFAULT_LIMIT,
                    Some(raw) => raw.parse().map_err(|_| ConfigError::AnswerLimit(raw))?,
                },
            }),
        };
        let gc = gc_config(&get)?;
        let allowed_origins = match get("ALLOWED_ORIGINS")? {
            None => AllowedOrigins::Any,
            Some(raw) => parse_origins(&raw)?,
        };
        let log_format = match get("LOG_FORMAT")?.as_deref() {
            None => LogFormat::Text,
            Some(f) if f.eq_ignore_ascii_case("text") => LogFormat::Text,
            Some(f) if f.eq_ignore_ascii_case("json") => LogFormat::Json,
            Some(other) => return Err(ConfigError::LogFormat(other.to_owned())),
        };
        Ok(Self {
            host: get("HOST")?.unwrap_or_else(|| DEFAULT_HOST.to_owned()),
            port,
            storage,
            allowed_origins,
            client_dir: get("CLIENT_DIR")?
                .unwrap_or_else(|| DEFAULT_CLIENT_DIR.to_owned())
                .into(),
            log_format,
            cookie_secret_file,
            request_timeout,
            max_sockets_per_space,
            auth,
            answers,
            gc,
        })
    }
}

fn gc_config(
    get: &impl Fn(&'static str) -> Result<Option<String>, ConfigError>,
) -> Result<Option<GcConfig>, ConfigError> {
    let seconds = |name: &'static str, default: Duration, zero_allowed: bool| {
        let Some(raw) = get(name)? else {
            return Ok(default);
        };
        raw.parse::<u64>()
            .ok()
            .filter(|n| zero_allowed || *n > 0)
            .map(Duration::from_secs)
            .ok_or(ConfigError::Seconds {
                name,
                raw,
                zero_allowed,
            })
    };
    let defaults = sync_core::gc::GcPolicy::DEFAULT;
    let interval = seconds("GC_INTERVAL_SECS", DEFAULT_GC_INTERVAL, true)?;
    let policy = sync_core::gc::GcPolicy {
        tombstone_retention: seconds(
            "TOMBSTONE_RETENTION_SECS",
            defaults.tombstone_retention,
            false,
        )?,
        client_idle: seconds("CLIENT_IDLE_SECS", defaults.client_idle, false)?,
    };
    Ok((!interval.is_zero()).then_some(GcConfig { interval, policy }))
}

fn auth_config(
    get: &impl Fn(&'static str) -> Result<Option<String>, ConfigError>,
    data_dir: &std::path::Path,
) -> Result<AuthConfig, ConfigError> {
    const JWT_SETTINGS: [&str; 5] = [
        "JWT_SECRET_FILE",
        "JWKS_FILE",
        "JWT_ISSUER",
        "JWT_AUDIENCE",
        "DEV_TOKEN_TTL_SECS",
    ];
    let mode = get("AUTH_MODE")?;
    match mode.as_deref() {
        None => {}
        Some(m) if m.eq_ignore_ascii_case("none") => {}
        Some(m) if m.eq_ignore_ascii_case("jwt") => {
            let keys = match (get("JWT_SECRET_FILE")?, get("JWKS_FILE")?) {
                (Some(_), Some(_)) => return Err(ConfigError::TwoKeySources),
                (None, Some(jwks)) => JwtKeys::Jwks(jwks.into()),
                (Some(secret), None) => JwtKeys::DevSecret(secret.into()),
                (None, None) => {
                    JwtKeys::DevSecret(data_dir.join(crate::jwt::DEFAULT_SECRET_FILE_NAME))
                }
            };
            let dev_token_ttl = match get("DEV_TOKEN_TTL_SECS")? {
                None => DEFAULT_DEV_TOKEN_TTL,
                Some(raw) => raw
                    .parse::<u64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .map(Duration::from_secs)
                    .ok_or(ConfigError::DevTokenTtl(raw))?,
            };
            return Ok(AuthConfig::Jwt(JwtConfig {
                keys,
                issuer: get("JWT_ISSUER")?,
                audience: get("JWT_AUDIENCE")?,
                dev_token_ttl,
            }));
        }
        Some(other) => return Err(ConfigError::AuthMode(other.to_owned())),
    }
    // A key file or issuer set without the mode would leave the server open while its
    // operator believes it is not.
    for name in JWT_SETTINGS {
        if get(name)?.is_some() {
            return Err(ConfigError::JwtSettingWithoutJwt(name));
        }
    }
    Ok(AuthConfig::None)
}

fn parse_origins(raw: &str) -> Result<AllowedOrigins, ConfigError> {
    let mut origins = Vec::new();
    for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        if origin == "*" {
            return Ok(AllowedOrigins::Any);
        }
        // Browsers send the origin without a path; a trailing slash would never match.
        let origin = origin.trim_end_matches('/');
        let valid_shape = origin
            .split_once("://")
            .is_some_and(|(scheme, host)| !scheme.is_empty() && !host.is_empty());
        let value = HeaderValue::from_str(origin)
            .ok()
            .filter(|_| valid_shape)
            .ok_or_else(|| ConfigError::Origin(origin.to_owned()))?;
        origins.push(value);
    }
    if origins.is_empty() {
        return Ok(AllowedOrigins::Any);
    }
    Ok(AllowedOrigins::List(origins))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&'static str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<&str, String> = vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
        Config::from_lookup(|name| Ok(vars.get(name).cloned()))
    }

    #[test]
    fn answer_bucket_on_dynamodb_only() {
        assert_eq!(config(&[]).unwrap().answers, None);
        assert_eq!(
            config(&[("ANSWER_BUCKET", "b")]).unwrap_err(),
            ConfigError::AnswerBucketWithoutDynamoDb
        );
        let c = config(&[
            ("DYNAMODB_ENDPOINT", "http://127.0.0.1:5000"),
            ("ANSWER_BUCKET", "b"),
        ])
        .unwrap();
        assert_eq!(
            c.answers,
            Some(AnswerConfig {
                bucket: "b".into(),
                endpoint: "http://127.0.0.1:5000".into(),
                limit: sync_core::spill::DEFAULT_LIMIT,
            })
        );
        assert_eq!(sync_core::spill::DEFAULT_LIMIT, 6_029_312);
        let c = config(&[
            ("DYNAMODB_ENDPOINT", "http://127.0.0.1:5000"),
            ("ANSWER_BUCKET", "b"),
            ("S3_ENDPOINT", "http://127.0.0.1:6000"),
            ("ANSWER_LIMIT_BYTES", "1000"),
        ])
        .unwrap();
        let answers = c.answers.unwrap();
        assert_eq!(
            (answers.endpoint.as_str(), answers.limit),
            ("http://127.0.0.1:6000", 1000)
        );
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.port, 8080);
        assert_eq!(
            c.storage,
            StorageConfig::Sqlite {
                data_dir: ".data".into()
            }
        );
        assert_eq!(c.allowed_origins, AllowedOrigins::Any);
        assert_eq!(c.client_dir, PathBuf::from("client/dist"));
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.cookie_secret_file, PathBuf::from(".data/cookie-secret"));
        assert_eq!(c.request_timeout, Duration::from_secs(25));
        assert_eq!(c.max_sockets_per_space, 1000);
        assert_eq!(c.auth, AuthConfig::None);
        assert_eq!(
            c.gc,
            Some(GcConfig {
                interval: Duration::from_secs(3600),
                policy: sync_core::gc::GcPolicy::DEFAULT
            })
        );
    }

    #[test]
    fn garbage_collection() {
        let c = config(&[
            ("GC_INTERVAL_SECS", "2"),
            ("TOMBSTONE_RETENTION_SECS", "5"),
            ("CLIENT_IDLE_SECS", "7"),
        ])
        .unwrap();
        assert_eq!(
            c.gc,
            Some(GcConfig {
                interval: Duration::from_secs(2),
                policy: sync_core::gc::GcPolicy {
                    tombstone_retention: Duration::from_secs(5),
                    client_idle: Duration::from_secs(7),
                }
            })
        );
        assert_eq!(config(&[("GC_INTERVAL_SECS", "0")]).unwrap().gc, None);
        let err = config(&[("CLIENT_IDLE_SECS", "0")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CLIENT_IDLE_SECS must be a number of seconds from 1, not \"0\""
        );
        let err = config(&[("GC_INTERVAL_SECS", "soon")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "GC_INTERVAL_SECS must be a number of seconds, not \"soon\""
        );
    }

    #[test]
    fn jwt_mode() {
        let c = config(&[("AUTH_MODE", "jwt"), ("DATA_DIR", "/d")]).unwrap();
        assert_eq!(
            c.auth,
            AuthConfig::Jwt(JwtConfig {
                keys: JwtKeys::DevSecret("/d/jwt-secret".into()),
                issuer: None,
                audience: None,
                dev_token_ttl: Duration::from_secs(3600),
            })
        );
        let c = config(&[
            ("AUTH_MODE", "JWT"),
            ("JWKS_FILE", "/keys.json"),
            ("JWT_ISSUER", "https://issuer.test"),
            ("JWT_AUDIENCE", "app"),
            ("DEV_TOKEN_TTL_SECS", "2"),
        ])
        .unwrap();
        assert_eq!(
            c.auth,
            AuthConfig::Jwt(JwtConfig {
                keys: JwtKeys::Jwks("/keys.json".into()),
                issuer: Some("https://issuer.test".into()),
                audience: Some("app".into()),
                dev_token_ttl: Duration::from_secs(2),
            })
        );
        let c = config(&[("AUTH_MODE", "jwt"), ("JWT_SECRET_FILE", "/s")]).unwrap();
        assert!(
            matches!(c.auth, AuthConfig::Jwt(JwtConfig { keys: JwtKeys::DevSecret(p), .. }) if p == std::path::Path::new("/s"))
        );
        assert_eq!(
            config(&[("AUTH_MODE", " none ")]).unwrap().auth,
            AuthConfig::None
        );
    }

    #[test]
    fn auth_refusals() {
        assert_eq!(
            config(&[("AUTH_MODE", "open")]),
            Err(ConfigError::AuthMode("open".into()))
        );
        assert_eq!(
            config(&[
                ("AUTH_MODE", "jwt"),
                ("JWT_SECRET_FILE", "/s"),
                ("JWKS_FILE", "/k")
            ]),
            Err(ConfigError::TwoKeySources)
        );
        assert_eq!(
            config(&[("AUTH_MODE", "jwt"), ("DEV_TOKEN_TTL_SECS", "0")]),
            Err(ConfigError::DevTokenTtl("0".into()))
        );
        assert_eq!(
            config(&[("JWKS_FILE", "/k")]),
            Err(ConfigError::JwtSettingWithoutJwt("JWKS_FILE"))
        );
        assert_eq!(
            config(&[("AUTH_MODE", "none"), ("JWT_ISSUER", "x")]),
            Err(ConfigError::JwtSettingWithoutJwt("JWT_ISSUER"))
        );
        for bad in ["0", "many"] {
            assert_eq!(
                config(&[("MAX_SOCKETS_PER_SPACE", bad)]),
                Err(ConfigError::MaxSockets(bad.into()))
            );
        }
        assert_eq!(
            config(&[("MAX_SOCKETS_PER_SPACE", "3")])
                .unwrap()
                .max_sockets_per_space,
            3
        );
    }

    #[test]
    fn dynamodb_when_an_endpoint_is_set() {
        let c = config(&[("DYNAMODB_ENDPOINT", "http://127.0.0.1:5000")]).unwrap();
        assert_eq!(
            c.storage,
            StorageConfig::DynamoDb {
                endpoint: "http://127.0.0.1:5000".into(),
                table: "replicache".into()
            }
        );
        let c = config(&[("DYNAMODB_ENDPOINT", " "), ("TABLE_NAME", "t")]).unwrap();
        assert!(matches!(c.storage, StorageConfig::Sqlite { .. }));
    }

    #[test]
    fn explicit_values() {
        let c = config(&[
            ("PORT", "0"),
            ("HOST", "0.0.0.0"),
            ("DATA_DIR", "/tmp/x"),
            ("CLIENT_DIR", "web"),
            ("LOG_FORMAT", "JSON"),
            ("REQUEST_TIMEOUT_MS", "1500"),
            (
                "ALLOWED_ORIGINS",
                "http://localhost:5173/, https://app.example.com",
            ),
        ])
        .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 0));
        assert_eq!(
            c.storage,
            StorageConfig::Sqlite {
                data_dir: "/tmp/x".into()
            }
        );
        assert_eq!(c.client_dir, PathBuf::from("web"));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.cookie_secret_file, PathBuf::from("/tmp/x/cookie-secret"));
        assert_eq!(c.request_timeout, Duration::from_millis(1500));
        assert_eq!(
            c.allowed_origins,
            AllowedOrigins::List(vec![
                HeaderValue::from_static("http://localhost:5173"),
                HeaderValue::from_static("https://app.example.com"),
            ])
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(
            config(&[("PORT", "80a")]),
            Err(ConfigError::Port("80a".into()))
        );
        assert_eq!(
            config(&[("PORT", "70000")]),
            Err(ConfigError::Port("70000".into()))
        );
        assert_eq!(
            config(&[("ALLOWED_ORIGINS", "localhost")]),
            Err(ConfigError::Origin("localhost".into()))
        );
        assert_eq!(
            config(&[("LOG_FORMAT", "xml")]),
            Err(ConfigError::LogFormat("xml".into()))
        );
        for bad in ["0", "-5", "soon"] {
            assert_eq!(
                config(&[("REQUEST_TIMEOUT_MS", bad)]),
                Err(ConfigError::RequestTimeout(bad.into()))
            );
        }
        assert_eq!(
            config(&[("ALLOWED_ORIGINS", "http://a.test, *")]).map(|c| c.allowed_origins),
            Ok(AllowedOrigins::Any)
        );
    }
}
