//! `tessera radius ...`: RADIUS clients (add shows a generated secret once), a built-in radtest
//! (`test`, signs with Message-Authenticator, `--expect`, exit code) and `doctor` (why packets
//! were dropped, with hints, and what in the setup is weak).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use tessera_radius::{Packet, Request, attr, code};

use crate::model::{RadiusClient, RadiusMode};
use crate::radius::status::{StatusReport, hint, status_file};
use crate::service::radius::{AddRadiusClient, SHORT_SECRET};

use super::output::{Ctx, Listing, Table, clean, invalid, read_password, time, yes_no};
use super::values;

#[derive(Debug, Subcommand)]
pub enum RadiusCommand {
    /// Manage RADIUS clients (NASes, VPN gateways, proxies).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Send an Access-Request like a NAS and show the answer (the password, and for a
    /// challenge the code on a second line, come from stdin). Exit 0 when the answer is the
    /// one --expect names (default: accept), else 1.
    Test(TestArgs),
    /// Explain recent drops (source, reason, hint) and check the RADIUS setup.
    Doctor,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client and show its generated shared secret, once.
    Add {
        /// A unique name, e.g. "fw1".
        #[arg(value_name = "NAME")]
        name: String,
        /// The client's address or range: 192.0.2.7, 10.0.0.0/8, 2001:db8::/32.
        #[arg(long, value_name = "CIDR")]
        address: String,
        /// What User-Password holds: password+code, code, or challenge (password first, then
        /// an Access-Challenge asks for the code).
        #[arg(long, value_name = "MODE", default_value = "password+code", value_parser = mode)]
        mode: RadiusMode,
        /// Drop requests without a valid Message-Authenticator (BlastRADIUS) [default: yes].
        #[arg(long, value_name = values::BOOL_VALUES, value_parser = values::boolean)]
        require_message_authenticator: Option<bool>,
        /// Drop requests with Proxy-State but no Message-Authenticator.
        #[arg(long)]
        limit_proxy_state: bool,
        /// Let users who never had a token (and need none) in with the password alone.
        #[arg(long)]
        passthrough: bool,
        /// Read the shared secret from the first line of stdin instead of generating one.
        #[arg(long)]
        secret_stdin: bool,
    },
    /// List clients (never their secrets).
    List,
    /// Show one client.
    Show {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Remove a client: its packets are dropped from now on.
    Remove {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Add a next secret, accepted beside the current one (shown once unless --secret-stdin);
    /// with --retire-old, make the next secret the only one.
    Rotate {
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(long)]
        retire_old: bool,
        #[arg(long, conflicts_with = "retire_old")]
        secret_stdin: bool,
    },
}

fn mode(s: &str) -> Result<RadiusMode, String> {
    s.parse()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Accept,
    Reject,
    Challenge,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The user to log in.
    #[arg(value_name = "USER")]
    user: String,
    /// The client to act as (its secret signs the request).
    #[arg(long, value_name = "NAME")]
    client: String,
    /// The server [default: radius.listen, 0.0.0.0 as 127.0.0.1].
    #[arg(long, value_name = "ADDR")]
    server: Option<SocketAddr>,
    /// The answer that counts as success.
    #[arg(long, value_enum, default_value = "accept")]
    expect: Expect,
    /// Seconds to wait for each answer (a reject comes after the reject delay).
    #[arg(long, default_value = "5")]
    timeout: u64,
}

#[derive(Debug, Serialize)]
struct TestResult {
    answer: Option<Expect>,
    steps: Vec<String>,
    reply_message: Option<String>,
    expected: Expect,
    ok: bool,
}

pub async fn run(ctx: &Ctx, cmd: RadiusCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RadiusCommand::Client(cmd) => client(ctx, cmd).await,
        RadiusCommand::Test(args) => test(ctx, args).await,
        RadiusCommand::Doctor => doctor(ctx).await,
    }
}

fn show(out: &mut String, c: &RadiusClient) -> std::fmt::Result {
    writeln!(out, "name:                          {}", clean(&c.name))?;
    writeln!(out, "address:                       {}", c.address)?;
    writeln!(out, "mode:                          {}", c.mode)?;
    writeln!(
        out,
        "require Message-Authenticator: {}",
        yes_no(c.require_message_authenticator)
    )?;
    writeln!(
        out,
        "limit Proxy-State:             {}",
        yes_no(c.limit_proxy_state)
    )?;
    writeln!(
        out,
        "passthrough:                   {}",
        yes_no(c.passthrough)
    )?;
    writeln!(
        out,
        "secrets:                       {}",
        if c.sealed_next_secret.is_some() {
            "current and next (rotation in progress: `tessera radius client rotate NAME --retire-old` ends it)"
        } else {
            "one"
        }
    )?;
    writeln!(out, "created:                       {}", time(c.created_at))
}

#[derive(Serialize)]
struct Created<'a> {
    #[serde(flatten)]
    client: &'a RadiusClient,
    secret: Option<&'a str>,
    short_secret: bool,
}

async fn client(ctx: &Ctx, cmd: ClientCommand) -> anyhow::Result<ExitCode> {
    let service = &ctx.service;
    let actor = &ctx.actor;
    match cmd {
        ClientCommand::Add {
            name,
            address,
            mode,
            require_message_authenticator,
            limit_proxy_state,
            passthrough,
            secret_stdin,
        } => {
            let secret = if secret_stdin {
                Some(read_password("the RADIUS client")?)
            } else {
                None
            };
            let created = service
                .add_radius_client(
                    actor,
                    AddRadiusClient {
                        name,
                        address,
                        mode,
                        require_message_authenticator: require_message_authenticator
                            .unwrap_or(true),
                        limit_proxy_state,
                        passthrough,
                        secret,
                    },
                )
                .await?;
            if created.short_secret {
                eprintln!(
                    "warning: the shared secret has {SHORT_SECRET} characters or fewer; use at \
                     least 32 random characters (draft-ietf-radext-deprecating-radius)"
                );
            }
            let view = Created {
                client: &created.client,
                secret: created.secret.as_deref().map(|s| s.as_str()),
                short_secret: created.short_secret,
            };
            ctx.emit(&view, |out, v| {
                writeln!(out, "Added RADIUS client {}.", clean(&v.client.name))?;
                show(out, v.client)?;
                if let Some(secret) = v.secret {
                    writeln!(out)?;
                    writeln!(out, "Shared secret: {secret}")?;
                    writeln!(out)?;
                    writeln!(
                        out,
                        "The secret is shown only now: put it into the NAS's RADIUS settings."
                    )?;
                }
                Ok(())
            })?;
        }
        ClientCommand::List => {
            let clients = service.list_radius_clients(actor).await?;
            ctx.emit(&Listing::all(&clients), |out, listing| {
                if listing.items.is_empty() {
                    return writeln!(out, "No RADIUS clients.");
                }
                let mut t = Table::new(&["NAME", "ADDRESS", "MODE", "MSG-AUTH", "SECRETS"]);
                for c in listing.items {
                    t.row([
                        c.name.clone(),
                        c.address.to_string(),
                        c.mode.to_string(),
                        if c.require_message_authenticator {
                            "required".into()
                        } else {
                            "optional".into()
                        },
                        if c.sealed_next_secret.is_some() {
                            "2 (rotating)".into()
                        } else {
                            "1".into()
                        },
                    ]);
                }
                t.render(out)
            })?;
        }
        ClientCommand::Show { name } => {
            let c = service.get_radius_client(actor, &name).await?;
            ctx.emit(&c, show)?;
        }
        ClientCommand::Remove { name } => {
            service.remove_radius_client(actor, &name).await?;
            let done = serde_json::json!({ "removed": name });
            ctx.emit(&done, |out, _| {
                writeln!(out, "Removed RADIUS client {}.", clean(&name))
            })?;
        }
        ClientCommand::Rotate {
            name,
            retire_old,
            secret_stdin,
        } => {
            let secret = if secret_stdin {
                Some(read_password("the RADIUS client")?)
            } else {
                None
            };
            let (c, generated, short) = service
                .rotate_radius_secret(actor, &name, secret, retire_old)
                .await?;
            if short {
                eprintln!("warning: the new secret has {SHORT_SECRET} characters or fewer");
            }
            let view = Created {
                client: &c,
                secret: generated.as_deref().map(|s| s.as_str()),
                short_secret: short,
            };
            ctx.emit(&view, |out, v| {
                if retire_old {
                    writeln!(out, "The old secret of {} is retired.", clean(&v.client.name))?;
                } else {
                    writeln!(
                        out,
                        "A next secret for {} is accepted beside the current one.",
                        clean(&v.client.name)
                    )?;
                    if let Some(s) = v.secret {
                        writeln!(out, "\nNext shared secret: {s}\n")?;
                    }
                    writeln!(
                        out,
                        "Put it on the NAS, then run `tessera radius client rotate {} --retire-old`.",
                        clean(&v.client.name)
                    )?;
                }
                Ok(())
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The address to send to: `--server`, else `radius.listen` with an unspecified address as
/// loopback.
fn server_addr(ctx: &Ctx, given: Option<SocketAddr>) -> anyhow::Result<SocketAddr> {
    if let Some(a) = given {
        return Ok(a);
    }
    let listen = &ctx.service.config().radius.listen;
    let mut addr: SocketAddr = listen.parse().map_err(|_| {
        invalid("RADIUS is off ([radius] listen is empty): name the server with --server ADDR")
    })?;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Ok(addr)
}

/// One request and its verified answer, retransmitted like a NAS does (same bytes).
async fn exchange(
    sock: &tokio::net::UdpSocket,
    server: SocketAddr,
    secret: &[u8],
    fields: &[(u8, &[u8])],
    password: &[u8],
    timeout: Duration,
) -> anyhow::Result<Option<(u8, Option<Vec<u8>>, Option<String>)>> {
    let random = crate::crypto::random_bytes(17)?;
    let mut auth = [0u8; 16];
    auth.copy_from_slice(&random[..16]);
    let mut req = Request::new(code::ACCESS_REQUEST, random[16], auth);
    for (t, v) in fields {
        req.push(*t, v);
    }
    if !req.push_password(password, secret) {
        return Err(invalid("the password is longer than 128 bytes"));
    }
    let bytes = req
        .encode(secret, true)
        .context("the request is too large")?;
    let mut buf = vec![0u8; tessera_radius::MAX_PACKET];
    let deadline = tokio::time::Instant::now() + timeout;
    sock.send_to(&bytes, server).await?;
    loop {
        let wait = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await;
        let Ok(received) = wait else { return Ok(None) };
        let (n, from) = received?;
        if from != server {
            continue;
        }
        let Ok(reply) = Packet::parse(&buf[..n]) else {
            continue;
        };
        // Only a reply signed with our secret, Message-Authenticator first (as FortiOS and
        // pyrad's enforce_ma demand), for this request.
        if reply.identifier != random[16] || reply.verify_reply(secret, &auth, true).is_err() {
            continue;
        }
        let state = reply.attr(attr::STATE).map(<[u8]>::to_vec);
        let message = reply
            .attr(attr::REPLY_MESSAGE)
            .map(|m| String::from_utf8_lossy(m).into_owned());
        return Ok(Some((reply.code, state, message)));
    }
}

async fn test(ctx: &Ctx, args: TestArgs) -> anyhow::Result<ExitCode> {
    let server = server_addr(ctx, args.server)?;
    let live = ctx
        .service
        .radius_client_table()
        .await?
        .into_iter()
        .find(|c| c.client.name == args.client)
        .ok_or(crate::service::Error::NotFound("RADIUS client"))?;
    let password = read_password(&args.user)?;
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let sock = tokio::net::UdpSocket::bind(bind).await?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let name = args.user.as_bytes();
    let nas: &[u8] = b"tessera-radius-test";
    let fields: Vec<(u8, &[u8])> = vec![(attr::USER_NAME, name), (attr::NAS_IDENTIFIER, nas)];
    let mut steps = Vec::new();
    let mut answer = exchange(
        &sock,
        server,
        &live.secret,
        &fields,
        password.as_bytes(),
        timeout,
    )
    .await?;
    if let Some((code::ACCESS_CHALLENGE, Some(state), message)) = answer.clone() {
        steps.push(format!("Access-Challenge: {}", message.unwrap_or_default()));
        // A second line on stdin answers the challenge, with its State.
        if args.expect != Expect::Challenge {
            let code = read_password(&args.user)?;
            let mut with_state = fields.clone();
            with_state.push((attr::STATE, &state));
            answer = exchange(
                &sock,
                server,
                &live.secret,
                &with_state,
                code.as_bytes(),
                timeout,
            )
            .await?;
        }
    }
    let got = answer.as_ref().and_then(|(c, _, _)| match *c {
        code::ACCESS_ACCEPT => Some(Expect::Accept),
        code::ACCESS_REJECT => Some(Expect::Reject),
        code::ACCESS_CHALLENGE => Some(Expect::Challenge),
        _ => None,
    });
    steps.push(match got {
        Some(Expect::Accept) => "Access-Accept".into(),
        Some(Expect::Reject) => "Access-Reject".into(),
        Some(Expect::Challenge) => "Access-Challenge".into(),
        None => format!("no answer within {} s", args.timeout),
    });
    let result = TestResult {
        answer: got,
        reply_message: answer.and_then(|a| a.2),
        ok: got == Some(args.expect),
        expected: args.expect,
        steps,
    };
    ctx.emit(&result, |out, r| {
        for s in &r.steps {
            writeln!(out, "{s}")?;
        }
        if r.answer.is_none() {
            writeln!(
                out,
                "hint: `tessera radius doctor` on the server shows why packets were dropped"
            )?;
        }
        Ok(())
    })?;
    Ok(if result.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[derive(Serialize)]
struct DoctorReport {
    listen: String,
    findings: Vec<String>,
    status: Option<StatusReport>,
}

async fn doctor(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let config = ctx.service.config();
    let mut findings = Vec::new();
    if config.radius.listen.is_empty() {
        findings.push("RADIUS is off: set [radius] listen = \"0.0.0.0:1812\"".to_owned());
    }
    let clients = ctx.service.radius_client_table().await?;
    if clients.is_empty() {
        findings.push("no RADIUS clients: tessera radius client add NAME --address CIDR".into());
    }
    for c in &clients {
        let n = clean(&c.client.name);
        if !c.client.require_message_authenticator {
            findings.push(format!(
                "{n}: Message-Authenticator not required (BlastRADIUS, CVE-2024-3596)"
            ));
        }
        if c.secret.len() <= SHORT_SECRET {
            findings.push(format!(
                "{n}: the shared secret is {SHORT_SECRET} characters or fewer"
            ));
        }
        if c.next_secret.is_some() {
            findings.push(format!(
                "{n}: a secret rotation is in progress (--retire-old ends it)"
            ));
        }
    }
    let status = std::fs::read(status_file(&config.data_dir))
        .ok()
        .and_then(|b| serde_json::from_slice::<StatusReport>(&b).ok());
    let report = DoctorReport {
        listen: config.radius.listen.clone(),
        findings,
        status,
    };
    ctx.emit(&report, |out, r| {
        for f in &r.findings {
            writeln!(out, "- {f}")?;
        }
        let Some(s) = &r.status else {
            return writeln!(
                out,
                "No status from a running server in this data directory (radius-status.json)."
            );
        };
        writeln!(
            out,
            "Server on {} (status of {}):",
            s.listen,
            time(s.written_at)
        )?;
        for (name, n) in s.counters.iter().filter(|(_, n)| *n > 0) {
            writeln!(out, "  {name}: {n}")?;
        }
        if s.recent.is_empty() {
            return writeln!(out, "No packets dropped.");
        }
        writeln!(out, "Recent drops (newest last):")?;
        let mut t = Table::new(&["TIME", "SOURCE", "CLIENT", "REASON", "HINT"]);
        for d in s.recent.iter().rev().take(20).rev() {
            t.row([
                time(d.at),
                d.source.clone(),
                if d.client.is_empty() {
                    "-".into()
                } else {
                    clean(&d.client)
                },
                d.reason.clone(),
                hint(&d.reason).to_owned(),
            ]);
        }
        t.render(out)
    })?;
    Ok(ExitCode::SUCCESS)
}
