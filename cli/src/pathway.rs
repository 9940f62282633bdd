//! `ddlambda pathway`: decode data-streams pathway contexts and compute checkpoints offline,
//! with the same hashing and codec the wrapper uses (`ddlambda_wire::pathway`).

use std::process::ExitCode;

use ddlambda_wire::pathway::{Pathway, node_hash};
use serde_json::json;

const NS_PER_MS: i64 = 1_000_000;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Decode a base64 pathway context (`dd-pathway-ctx-base64`).
    Decode {
        /// The base64 context.
        b64: String,
    },
    /// Compute the checkpoint a service would set: hash, parent, new context, latencies.
    Checkpoint {
        #[arg(long, allow_hyphen_values = true)]
        service: String,
        #[arg(long, allow_hyphen_values = true)]
        env: String,
        /// Time of the checkpoint, Unix milliseconds.
        #[arg(long = "now-ms", allow_hyphen_values = true)]
        now_ms: i64,
        /// The parent's base64 context; without it the checkpoint starts a pathway.
        #[arg(long)]
        parent: Option<String>,
        /// An edge tag `key:value`; repeat for each (order does not matter).
        #[arg(long = "tag", value_name = "K:V", allow_hyphen_values = true)]
        tags: Vec<String>,
    },
}

pub fn run(cmd: Command) -> ExitCode {
    match execute(cmd) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("ddlambda pathway: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn execute(cmd: Command) -> Result<serde_json::Value, String> {
    match cmd {
        Command::Decode { b64 } => {
            let p = Pathway::from_base64(&b64).map_err(|e| e.to_string())?;
            Ok(json!({
                "hash": p.hash.to_string(),
                "pathway_start_ms": p.pathway_start_ms(),
                "edge_start_ms": p.edge_start_ms(),
            }))
        }
        Command::Checkpoint {
            service,
            env,
            now_ms,
            parent,
            tags,
        } => {
            if let Some(bad) = tags.iter().find(|t| !t.contains(':')) {
                return Err(format!("edge tag {bad:?} is not key:value"));
            }
            let parent = parent
                .map(|b| Pathway::from_base64(&b).map_err(|e| format!("--parent: {e}")))
                .transpose()?;
            let now_ns = now_ms
                .checked_mul(NS_PER_MS)
                .ok_or_else(|| format!("--now-ms {now_ms} is out of range"))?;
            let c = Pathway::checkpoint(parent.as_ref(), node_hash(&service, &env, &tags), now_ns);
            Ok(json!({
                "hash": c.pathway.hash.to_string(),
                "parent_hash": c.parent_hash.to_string(),
                "encoded": c.pathway.to_base64(),
                "pathway_latency_ms": c.pathway_latency_ns / NS_PER_MS,
                "edge_latency_ms": c.edge_latency_ns / NS_PER_MS,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_chain_matches_ddtrace_vectors() {
        let root = execute(Command::Checkpoint {
            service: "service-1".into(),
            env: "env1".into(),
            now_ms: 1_700_000_000_000,
            parent: None,
            tags: vec![
                "type:kafka".into(),
                "direction:out".into(),
                "topic:topic1".into(),
            ],
        })
        .unwrap();
        assert_eq!(root["hash"], "2791036541516892107");
        assert_eq!(root["parent_hash"], "0");
        assert_eq!(root["encoded"], "y8c/bPLAuyaAoKv++WKAoKv++WI=");
        let child = execute(Command::Checkpoint {
            service: "service-1".into(),
            env: "env1".into(),
            now_ms: 1_700_000_001_500,
            parent: Some("y8c/bPLAuyaAoKv++WKAoKv++WI=".into()),
            tags: vec![
                "direction:in".into(),
                "group:group1".into(),
                "topic:topic1".into(),
                "type:kafka".into(),
            ],
        })
        .unwrap();
        assert_eq!(child["hash"], "8858868147270760597");
        assert_eq!(child["edge_latency_ms"], 1500);
        assert_eq!(child["pathway_latency_ms"], 1500);
        assert_eq!(child["encoded"], "lbgYxqQF8XqAoKv++WK4t6v++WI=");
    }

    #[test]
    fn decode_and_errors() {
        let d = execute(Command::Decode {
            b64: "Z7CzXmXArPrE58Cfj2LI2cOfj2I=".into(),
        })
        .unwrap();
        assert_eq!(d["hash"], "18063023747089281127");
        assert_eq!(d["pathway_start_ms"], 1685673482722i64);
        assert!(execute(Command::Decode { b64: "AAAA".into() }).is_err());
        assert!(
            execute(Command::Checkpoint {
                service: "s".into(),
                env: "e".into(),
                now_ms: 0,
                parent: Some("%%%".into()),
                tags: vec![],
            })
            .is_err()
        );
    }
}
