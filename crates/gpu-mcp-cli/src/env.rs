//! Parsing a CLI whose flags can also come from the environment, under one prefix per binary.

use std::ffi::OsString;

use clap::{CommandFactory, Parser};

/// Prefix of the agent's environment variables: `--log-level` is `GPU_MCP_AGENT_LOG_LEVEL`.
pub const AGENT_ENV_PREFIX: &str = "GPU_MCP_AGENT_";

/// Prefix of the gateway's environment variables: `--log-level` is `GPU_MCP_GATEWAY_LOG_LEVEL`.
pub const GATEWAY_ENV_PREFIX: &str = "GPU_MCP_GATEWAY_";

/// The environment variable of the flag with clap id `id` (`max_body_bytes`, the field name):
/// `prefix` then the id in upper case, `-` as `_`.
pub fn env_name(prefix: &str, id: &str) -> String {
    format!("{prefix}{}", id.to_ascii_uppercase().replace('-', "_"))
}

/// `C`'s clap command with an environment variable for every long flag (except `--help` and
/// `--version`), named by [`env_name`]. A flag on the command line wins over its variable.
pub fn command<C: CommandFactory>(prefix: &str) -> clap::Command {
    C::command().mut_args(|arg| {
        let id = arg.get_id().as_str();
        if arg.get_long().is_none() || matches!(id, "help" | "version") {
            return arg;
        }
        let name = env_name(prefix, id);
        arg.env(name)
    })
}

/// Parses `args` (the program name first) as `C`, reading unset flags from the environment.
pub fn parse_from<C, I, T>(prefix: &str, args: I) -> Result<C, clap::Error>
where
    C: Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut command = command::<C>(prefix);
    let mut matches = command.try_get_matches_from_mut(args)?;
    C::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command))
}

/// Parses the process's arguments as `C`, reading unset flags from the environment.
pub fn parse<C: Parser>(prefix: &str) -> Result<C, clap::Error> {
    parse_from(prefix, std::env::args_os())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    struct Demo {
        /// A flag.
        #[arg(long, default_value_t = 1)]
        max_body_bytes: usize,
        /// A switch.
        #[arg(long)]
        strict: bool,
    }

    #[test]
    fn every_long_flag_has_a_prefixed_variable() {
        assert_eq!(
            env_name(AGENT_ENV_PREFIX, "max_body_bytes"),
            "GPU_MCP_AGENT_MAX_BODY_BYTES"
        );
        let command = command::<Demo>(GATEWAY_ENV_PREFIX);
        let envs: Vec<_> = command
            .get_arguments()
            .filter_map(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            envs,
            ["GPU_MCP_GATEWAY_MAX_BODY_BYTES", "GPU_MCP_GATEWAY_STRICT"]
        );
        let demo: Demo = parse_from(AGENT_ENV_PREFIX, ["demo", "--max-body-bytes", "7"]).unwrap();
        assert_eq!(demo.max_body_bytes, 7);
        assert!(!demo.strict);
        assert!(parse_from::<Demo, _, _>(AGENT_ENV_PREFIX, ["demo", "--nope"]).is_err());
    }
}
