//! Builds the configured sinks for the outbox worker.

use anyhow::Context;
use aws_sdk_sns::config::Region;

use crate::config::Config;

/// The `[[sinks]]` of `config` as the outbox sends to them (SNS clients through the named
/// account's credentials, or trailwatch's own).
pub async fn sinks(config: &Config) -> anyhow::Result<Vec<alert::Sink>> {
    let mut out = Vec::new();
    for k in &config.sinks {
        let kind = match k.kind.as_str() {
            "webhook" => alert::SinkKind::Webhook { url: k.url.clone().unwrap_or_default(), secret: k.secret.clone() },
            "slack" => alert::SinkKind::Slack { url: k.url.clone().unwrap_or_default() },
            "email" => alert::SinkKind::Email(alert::EmailSettings {
                host: k.smtp_host.clone().unwrap_or_default(),
                port: k.smtp_port,
                security: k.smtp_security.clone().unwrap_or_else(|| "starttls".into()),
                username: k.username.clone(),
                password: k.password.clone(),
                from: k.from.clone().unwrap_or_default(),
                to: k.to.clone(),
                ca_pem: match &k.smtp_ca_file {
                    Some(p) => {
                        Some(std::fs::read(p).with_context(|| format!("sinks {}: reading smtp_ca_file {p}", k.name))?)
                    }
                    None => None,
                },
            }),
            _ => {
                let topic_arn = k.topic_arn.clone().unwrap_or_default();
                let base = aws::account::base_config(&config.aws).await;
                let sdk = match &k.account {
                    Some(name) => match aws::account::connect(&base, &config.aws, config.account(name)?).await {
                        Ok(clients) => clients.config,
                        Err(e) => {
                            // Its deliveries wait in the outbox until a start that can connect.
                            tracing::error!(sink = %k.name, account = %name, error = %e, "SNS sink unavailable; its alerts stay queued");
                            eprintln!("trailwatch: sink {}: {e}; its alerts stay queued", k.name);
                            continue;
                        }
                    },
                    None => base,
                };
                let mut b = aws_sdk_sns::config::Builder::from(&sdk);
                if let Some(region) = topic_arn.split(':').nth(3).filter(|r| !r.is_empty()) {
                    b = b.region(Region::new(region.to_string()));
                }
                alert::SinkKind::Sns { client: aws_sdk_sns::Client::from_conf(b.build()), topic_arn }
            }
        };
        out.push(alert::Sink { name: k.name.clone(), kind, rate_per_minute: k.rate_per_minute.unwrap_or(60) });
    }
    Ok(out)
}
