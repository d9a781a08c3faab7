//! Builds the configured sinks for the outbox worker.

use anyhow::Context;
use aws_sdk_sns::config::Region;

use crate::config::{Config, SinkTarget};

/// The `[[sinks]]` of `config` as the outbox sends to them (SNS clients through the named
/// account's credentials, or trailwatch's own).
pub async fn sinks(config: &Config) -> anyhow::Result<Vec<alert::Sink>> {
    let mut out = Vec::new();
    for k in &config.sinks {
        let kind = match &k.target {
            SinkTarget::Webhook { url, secret } => {
                alert::SinkKind::Webhook { url: url.clone(), secret: secret.clone() }
            }
            SinkTarget::Slack { url } => alert::SinkKind::Slack { url: url.clone() },
            SinkTarget::Email(e) => alert::SinkKind::Email(alert::EmailSettings {
                host: e.smtp_host.clone(),
                port: e.smtp_port,
                security: e.smtp_security.clone(),
                username: e.username.clone(),
                password: e.password.clone(),
                from: e.from.clone(),
                to: e.to.clone(),
                ca_pem: match &e.smtp_ca_file {
                    Some(p) => Some(
                        std::fs::read(p)
                            .with_context(|| format!("sinks {}: reading smtp_ca_file {}", k.name, p.display()))?,
                    ),
                    None => None,
                },
            }),
            SinkTarget::Sns { topic_arn, account } => {
                let base = aws::account::base_config(&config.aws).await;
                let sdk = match account {
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
                alert::SinkKind::Sns { client: aws_sdk_sns::Client::from_conf(b.build()), topic_arn: topic_arn.clone() }
            }
        };
        out.push(alert::Sink { name: k.name.clone(), kind, rate_per_minute: k.rate_per_minute });
    }
    Ok(out)
}
