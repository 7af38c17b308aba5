"""The people who use the page: the set-up PIN, and a technician's help with an account."""

from __future__ import annotations

import click

from appliance.accounts import AccountError, Accounts
from appliance.clock import SystemClock
from appliance.text import message_of, say
from appliance.words import words
from smsgenie.cli.common import Globals, echo, friendly_errors, pass_globals, refusal, said


def _accounts(g: Globals) -> Accounts:
    return Accounts(g.open_db(), SystemClock())


@click.command("setup-pin")
@click.option("--new", "fresh", is_flag=True, help="Make a new PIN (the old one stops working).")
@pass_globals
@friendly_errors
def setup_pin(g: Globals, fresh: bool) -> None:
    """Print the set-up PIN that creates the first admin on the page (also on the counter panel)."""
    accounts = _accounts(g)
    if accounts.any_users():
        raise refusal(say("this box is set up: log in on the page (an admin can add users there; "
                          "'smsgenie users reset-password NAME' if the password is lost)"))
    pin = accounts.new_setup_pin() if fresh else accounts.setup_pin()
    if pin is None:
        raise refusal(say("there is no set-up PIN now (too many wrong tries?): 'smsgenie setup-pin --new' makes one"))
    click.echo(pin)


@click.group()
def users() -> None:
    """The page's users: list them, reset a lost password, let a slowed-down account try again."""


@users.command("list")
@pass_globals
@friendly_errors
def users_list(g: Globals) -> None:
    for user in _accounts(g).all():
        echo(f"{user.username:<20} ", words(user.role))


@users.command("reset-password")
@click.argument("name")
@click.option("--password-file", type=click.File("r", encoding="utf-8"), help="Read the new password from a file.")
@pass_globals
@friendly_errors
def users_reset_password(g: Globals, name: str, password_file) -> None:
    """Give NAME a new password (their sessions end everywhere)."""
    accounts = _accounts(g)
    user = accounts.by_name(name)
    if user is None:
        raise refusal(say("no user called {name}; 'smsgenie users list' shows them", name=repr(name)))
    password = (password_file.readline().rstrip("\n") if password_file else
                click.prompt(said(say("New password for {name}", name=name)), hide_input=True,
                             confirmation_prompt=True))
    try:
        accounts.set_password(user.id, password)
    except AccountError as exc:
        raise refusal(message_of(exc)) from None
    accounts.unlock(name)
    echo(say("{name} has a new password; tell them, and they sign in again everywhere.", name=name))


@users.command("unlock")
@click.argument("name")
@pass_globals
@friendly_errors
def users_unlock(g: Globals, name: str) -> None:
    """Let NAME try again at once after wrong passwords slowed their account down."""
    if not _accounts(g).unlock(name):
        raise refusal(say("no user called {name}; 'smsgenie users list' shows them", name=repr(name)))
    echo(say("{name} may sign in again at once.", name=name))


COMMANDS = (setup_pin, users)
