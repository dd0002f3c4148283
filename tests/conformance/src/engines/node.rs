//! The WASM package in Node: one `node` process runs every case it is sent,
//! one JSON line in, one JSON line out (see `node-runner.mjs`).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use super::Engine;
use crate::case::{Case, Outcome};
use crate::spell::{sqlite_statement, Arg};

pub struct Node {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Node {
    pub fn start(runner: &Path) -> Result<Node, String> {
        let mut child = Command::new("node")
            .arg(runner)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start node: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(Node {
            child,
            stdin,
            stdout,
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(serde::Serialize)]
struct Request<'a> {
    setup_policy: String,
    policy: String,
    case: &'a Case,
    /// Each write step's statement (without RETURNING) and values, as
    /// spelled (`null` for other steps).
    statements: Vec<Option<Statement>>,
}

#[derive(serde::Serialize)]
struct Statement {
    sql: String,
    params: Vec<Arg>,
}

#[derive(serde::Deserialize)]
struct Response {
    outcomes: Option<Vec<Outcome>>,
    error: Option<String>,
}

impl Engine for Node {
    fn name(&self) -> &'static str {
        "wasm-node"
    }

    fn run(&mut self, case: &Case) -> Result<Vec<Outcome>, String> {
        let request = Request {
            setup_policy: case.setup_policy(),
            policy: case.policy(),
            case,
            statements: case
                .steps
                .iter()
                .map(|step| {
                    sqlite_statement(&step.action).map(|(sql, params)| Statement { sql, params })
                })
                .collect(),
        };
        let line = serde_json::to_string(&request).map_err(|e| e.to_string())?;
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("node: {e}"))?;
        let mut answer = String::new();
        self.stdout
            .read_line(&mut answer)
            .map_err(|e| format!("node: {e}"))?;
        if answer.is_empty() {
            return Err("node runner exited".into());
        }
        let response: Response =
            serde_json::from_str(&answer).map_err(|e| format!("node answered {answer:?}: {e}"))?;
        match (response.outcomes, response.error) {
            (Some(outcomes), None) => Ok(outcomes),
            (_, Some(error)) => Err(error),
            (None, None) => Err("node runner answered nothing".into()),
        }
    }
}
