"""The vendor's tools, run on the vendor's own machine: signing keys, top-up codes, keyword lists, updates."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click

from appliance import update
from appliance.device import parse_device_id
from appliance.keywords import baseline as package_baseline
from appliance.keywords import read_words, sign_list
from appliance.text import say
from appliance.vendor import keygen as make_key
from appliance.vendor import load_private_key, write_codes_csv
from appliance.vendor import mint as make_codes
from smsgenie.cli.common import counted, echo, friendly_errors, refusal, said


@click.group()
def vendor() -> None:
    """The vendor's tools: signing keys and top-up codes (not for the box)."""


@vendor.command()
@click.option("--out", "out_dir", required=True, metavar="DIR", help="Where to write vendor.key and vendor.pub.")
@friendly_errors
def keygen(out_dir: str) -> None:
    """Make a vendor signing key: vendor.key (keep it secret) and vendor.pub (for the boxes)."""
    key_path, pub_path = make_key(out_dir)
    echo(say("Wrote {key} (mode 0600: keep it secret and backed up) and {pub}.", key=str(key_path), pub=str(pub_path)))
    echo(say("Put this line in each box's config:"))
    click.echo(f'[vendor]\npublic_key = "{pub_path.read_text().strip()}"')


@vendor.command("sign-keywords")
@click.option("--key", "key_path", required=True, metavar="FILE", help="vendor.key")
@click.option("--version", "version", type=click.IntRange(1), metavar="N",
              help="The list's version: higher than any list signed before (boxes refuse an older one).")
@click.option("--baseline", is_flag=True, help="Sign the baseline words shipped with the package (their version).")
@click.argument("files", nargs=-1, required=True, metavar="[WORDS_FILE] OUT")
@friendly_errors
def sign_keywords(key_path: str, version: int | None, baseline: bool, files: tuple[str, ...]) -> None:
    """Sign WORDS_FILE (one word per line) into OUT, for boxes to import; or, with --baseline, the package's
    baseline words (then give OUT alone)."""
    words_file, out = (None, files[0]) if len(files) == 1 else files[:2]
    if len(files) > 2 or (baseline and words_file) or (not baseline and not words_file):
        raise refusal(say("give the words file and OUT, or --baseline and OUT"))
    if baseline:
        shipped, words = package_baseline()
        version = version or shipped
    else:
        if version is None:
            raise refusal(say("give the list's --version: higher than the last list you signed"))
        words = read_words(Path(words_file).read_text(encoding="utf-8-sig"))
    if not words:
        raise refusal(say("{file} has no words (one per line)", file=words_file))
    try:
        with open(out, "x", encoding="utf-8") as f:
            f.write(sign_list(load_private_key(key_path), words, date.today(), version))
    except FileExistsError:
        raise refusal(say("{file} already exists: choose a new file name", file=out)) from None
    echo(say("Signed {words} into {file} (version {version}).", words=counted(len(words), "word"), file=out,
             version=version))


@vendor.command()
@click.option("--key", "key_path", required=True, metavar="FILE", help="vendor.key")
@click.option("--device", required=True, metavar="ID", help="The box's device id (smsgenie device-id).")
@click.option("--credits", type=click.IntRange(1, 2**32 - 1), required=True, help="Credits per code.")
@click.option("--count", type=click.IntRange(1, 100_000), default=1, show_default=True)
@click.option("--expires", type=click.DateTime(formats=["%Y-%m-%d"]), help="Last valid day, YYYY-MM-DD.")
@click.option("--csv", "csv_path", metavar="FILE", help="Write serial,device,credits,expires,code rows here.")
@click.option("--min-keywords", type=click.IntRange(0, 65_535), default=0, metavar="N",
              help="The box takes the codes only once it has your keyword list version N or newer (send it along).")
@friendly_errors
def mint(key_path: str, device: str, credits: int, count: int, expires: datetime | None,
         csv_path: str | None, min_keywords: int) -> None:
    """Make top-up codes for one box, one per line."""
    dev = parse_device_id(device)
    last_day = expires.date() if expires else None
    if last_day is not None and last_day < date.today():
        raise refusal(say("--expires {day} has already passed: give the last day the codes may be redeemed, "
                          "today or later", day=str(last_day)))
    codes = make_codes(load_private_key(key_path), dev, credits, count=count, expires=last_day,
                       min_keywords=min_keywords)
    if csv_path:
        try:
            write_codes_csv(csv_path, codes, dev, credits, last_day)
        except OSError as exc:
            raise refusal(say("cannot write {file}: {why}", file=csv_path, why=exc.strerror)) from None
        echo(say("Wrote {codes} to {file}.", codes=counted(len(codes), "code"), file=csv_path))
        return
    for _serial, code in codes:
        click.echo(code)


@vendor.command("check-receipt")
@click.option("--box-key", "box_key", required=True, metavar="LINE",
              help="The box's public key (ed25519:...), as recorded when the box was sold (smsgenie box-key).")
@click.argument("receipts", nargs=-1, required=True)
@friendly_errors
def check_receipt(box_key: str, receipts: tuple[str, ...]) -> None:
    """Check top-up RECEIPTS from one box (in the order the shop gave them): each is the box's, and its
    message record never went backwards. Quote each receipt (it has dashes), or give a file of them, one a line."""
    from appliance import receipt  # noqa: PLC0415 - cryptography only when needed

    codes = []
    for given in receipts:
        path = Path(given)
        codes += [line.strip() for line in path.read_text().splitlines() if line.strip()] if path.is_file() else [given]
    checked = [receipt.read(code, box_key) for code in codes]
    for r in checked:
        echo(say("OK  {receipt}", receipt=str(r)))
    problems = receipt.rollbacks(checked)
    if problems:
        raise refusal("; ".join(said(p) for p in problems))
    if len(checked) > 1:
        echo(say("The record only grew across these {n} receipts.", n=len(checked)))


@vendor.command("bundle")
@click.option("--key", "key_path", required=True, metavar="FILE", help="vendor.key")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The bundle file to write.")
@click.option("--notes", default="", help="What changed, shown on the box before it installs.")
@click.argument("wheels", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@friendly_errors
def bundle(key_path: str, out: str, notes: str, wheels: tuple[str, ...]) -> None:
    """Sign an update bundle: the smsgenie wheel and every wheel it needs on the box.

    scripts/make-update-bundle gathers the aarch64 wheels and calls this."""
    if Path(out).exists():
        raise refusal(say("{file} already exists: choose a new file name", file=out))
    update.make(load_private_key(key_path), [Path(w) for w in wheels], Path(out), notes=notes)
    echo(say("Signed {n} wheel(s) into {file}.", n=len(wheels), file=out))


COMMANDS = (vendor,)
