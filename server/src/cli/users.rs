//! `admin user`: add, list, change a role, set a web password.

use std::io::Write;

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use fieldcase_core::protocol::Role;
use fieldcase_server::display::for_terminal_line;
use fieldcase_server::office::{sign_in, users};

use super::Office;

/// `admin user ...`
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user.
    Add {
        /// Display name (unique).
        name: String,
        /// Role.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// List users.
    List,
    /// Give a user another role (takes effect on their next request).
    Role {
        /// User name (or id).
        name: String,
        /// The new role.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Set a user's web password, read from standard input (one line).
    Password {
        /// User name.
        name: String,
    },
}

/// A role as typed on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RoleArg {
    /// Works in the field with a phone.
    FieldWorker,
    /// Follows cases at the office.
    CaseManager,
    /// Manages users and devices.
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::FieldWorker => Role::FieldWorker,
            RoleArg::CaseManager => Role::CaseManager,
            RoleArg::Admin => Role::Admin,
        }
    }
}

/// Runs one `admin user` command.
pub fn run(office: &Office, command: UserCommand, out: &mut impl Write) -> Result<()> {
    let (db, now) = (&office.db, office.now);
    match command {
        UserCommand::Add { name, role } => {
            let id = db.write(|sql| users::add_user(sql, &name, role.into(), now))?;
            writeln!(out, "added user {id} ({})", Role::from(role))?;
        }
        UserCommand::Role { name, role } => {
            let done = db.write(|sql| users::change_role(sql, &name, role.into(), now))?;
            if done.from == done.to {
                writeln!(out, "user {} already has role {}", done.user_id, done.to)?;
            } else {
                writeln!(
                    out,
                    "user {}: role {} -> {}",
                    done.user_id, done.from, done.to
                )?;
            }
        }
        UserCommand::Password { name } => {
            let mut password = zeroize::Zeroizing::new(String::new());
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            db.write(|sql| sign_in::set_password(sql, &name, password, now))?;
            writeln!(out, "password set")?;
        }
        UserCommand::List => {
            let users = db.read(users::list_users)?;
            writeln!(
                out,
                "{:<36}  {:<12}  {:<8}  {:>7}  name",
                "id", "role", "active", "devices"
            )?;
            for u in users {
                writeln!(
                    out,
                    "{:<36}  {:<12}  {:<8}  {:>7}  {}",
                    u.id,
                    u.role,
                    if u.active { "yes" } else { "no" },
                    u.active_devices,
                    for_terminal_line(&u.name)
                )?;
            }
        }
    }
    Ok(())
}
