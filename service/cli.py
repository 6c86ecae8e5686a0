"""The `draftdesk` command."""
from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Optional

import typer

from service.config import get_settings
from service.eval.cli import eval_app

app = typer.Typer(help="draftdesk: AI-assisted reply drafts for customer-service teams.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
kb_app = typer.Typer(help="Import and export knowledge (FAQ entries, templates).", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Users and their bearer tokens (roles: agent, supervisor, editor, admin).",
                        no_args_is_help=True)
app.add_typer(kb_app, name="kb")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(eval_app, name="eval")


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def serve(host: Optional[str] = typer.Option(None, help="default DRAFTDESK_HOST or 127.0.0.1"),
          port: Optional[int] = typer.Option(None, help="default DRAFTDESK_PORT or 8000")) -> None:
    """Serve the API and the agent console."""
    import uvicorn

    from service.api.app import create_app
    from service.runtime import build_runtime

    settings = get_settings()
    typer.echo("loading knowledge and building the index…", err=True)
    runtime = build_runtime(settings, progress=True)
    uvicorn.run(create_app(settings, runtime=runtime), host=host or settings.host, port=port or settings.port)


@app.command()
def draft(text: str = typer.Option(..., "--text", help="the customer's message"),
          channel: str = typer.Option("app", help="app, web, phone, email, wechat, sms, social, marketplace, store"),
          name: Optional[str] = typer.Option(None, help="customer name"),
          phone: Optional[str] = typer.Option(None, help="customer phone"),
          customer_id: Optional[str] = typer.Option(None, help="customer id"),
          tier: str = typer.Option("regular", help="regular or vip"),
          order_id: Optional[str] = typer.Option(None, help="order number"),
          client_message_id: Optional[str] = typer.Option(None, help="idempotency key"),
          as_json: bool = typer.Option(False, "--json", help="print the draft record as JSON")) -> None:
    """Draft a reply to one message."""
    from pydantic import ValidationError

    from service.runtime import build_runtime
    from service.schemas import DraftRequest

    customer = {k: v for k, v in {"name": name, "phone": phone, "id": customer_id, "tier": tier}.items() if v}
    try:
        request = DraftRequest(channel=channel, text=text, customer=customer or None, order_id=order_id,
                               client_message_id=client_message_id)
    except ValidationError as exc:
        err = exc.errors()[0]
        fail(f"{'.'.join(map(str, err['loc']))}: {str(err['msg']).removeprefix('Value error, ')}")
    runtime = build_runtime(get_settings())
    record = asyncio.run(runtime.pipeline.draft(request))
    if as_json:
        typer.echo(record.model_dump_json(indent=2))
        return
    status = "待主管审核 (flagged)" if record.flagged else "可直接发送 (ready)"
    typer.echo(f"category {record.category.value} [{record.category.source}]  "
               f"priority {record.priority.value} [{record.priority.source}]  template {record.template_id}  {status}")
    if record.subject:
        typer.echo(f"subject: {record.subject}")
    typer.echo("")
    typer.echo(record.draft)
    if record.sms_text:
        typer.echo(f"\nSMS: {record.sms_text}")
    typer.echo("")
    for check in record.checks:
        typer.echo(f"  {'✓' if check.passed else '✗'} {check.name}: {check.reason}")
    for reason in record.reasons:
        typer.echo(f"  ! {reason}")
    typer.echo(f"first response due {record.sla.get('first_response_due')}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest revision."""
    from service.db.session import upgrade

    settings = get_settings()
    try:
        upgrade(settings.database_url)
    except Exception as exc:  # noqa: BLE001 - one clear line for any database failure
        fail(f"could not migrate {settings.database_url}: {exc}")
    typer.echo(f"database at {settings.database_url} is up to date")


@kb_app.command("import")
def kb_import(path: Path = typer.Argument(..., help="FAQ entries (.jsonl) or templates (.yaml)"),
              dry_run: bool = typer.Option(False, "--dry-run", help="report what would change, change nothing"),
              author: str = typer.Option("cli", help="recorded as the author of the new versions")) -> None:
    """Import FAQ entries or templates: new and changed entries get a new version (validated and audited)."""
    from service import kb
    from service.errors import Invalid
    from service.knowledge_admin import service as knowledge
    from service.masking import Masker
    from service.policy import load_policy

    settings = get_settings()
    try:
        if path.suffix in {".yaml", ".yml"}:
            kind, entries = "template", [t.model_dump() for t in kb.load_templates_file(path)]
        else:
            kind, entries = "faq", [e.model_dump() for e in kb.load_faq_file(path)]
    except kb.KnowledgeError as exc:
        fail(str(exc))
    policy = load_policy(settings.policy_path)
    sessions = _sessions(settings)
    with sessions() as session:
        kb.seed_if_empty(session, settings.knowledge_dir)
        try:
            result = knowledge.import_entries(session, kind, [(None, e) for e in entries], author, policy,
                                              Masker(policy.masking or None), dry_run=dry_run)
        except Invalid as exc:
            fail(exc.message)
        report = result.report
    verb = "would import" if dry_run else "imported"
    typer.echo(f"{verb} {kind} entries: {len(report.added)} added, {len(report.changed)} changed, "
               f"{len(report.unchanged)} unchanged")
    for entry_id in report.added:
        typer.echo(f"  + {entry_id}")
    for entry_id in report.changed:
        typer.echo(f"  ~ {entry_id}")


@kb_app.command("export")
def kb_export(kind: str = typer.Option("faq", help="faq or template"),
              out: Optional[Path] = typer.Option(None, help="write here instead of standard output")) -> None:
    """Export the live knowledge as JSON Lines."""
    from service import kb

    if kind not in {"faq", "template"}:
        fail("--kind must be faq or template")
    settings = get_settings()
    sessions = _sessions(settings)
    with sessions() as session:
        kb.seed_if_empty(session, settings.knowledge_dir)
        rows = kb.live_entries(session, kind)
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if out:
        out.write_text(lines, encoding="utf-8")
        typer.echo(f"wrote {len(rows)} {kind} entries to {out}", err=True)
    else:
        sys.stdout.write(lines)


def _sessions(settings):
    """A session factory on the migrated database; one clear line when the database is unreachable."""
    from service.db.session import make_engine, make_session_factory, upgrade

    try:
        upgrade(settings.database_url)
    except Exception as exc:  # noqa: BLE001 - one clear line for any database failure
        fail(f"could not open the database {settings.database_url}: {exc}")
    return make_session_factory(make_engine(settings.database_url))


@users_app.command("add")
def users_add(name: str = typer.Argument(..., help="user name (letters, digits, . _ - @)"),
              role: str = typer.Option(..., "--role", help="agent, supervisor, editor or admin")) -> None:
    """Create a user and print their bearer token — once: only its hash is stored."""
    from service.auth import service as users

    sessions = _sessions(get_settings())
    with sessions() as session:
        try:
            created = users.add_user(session, name, role, actor="cli")
        except users.UserError as exc:
            fail(str(exc))
    typer.echo(f"created {created.user.role} {created.user.name!r}; their token (shown once, store it now):",
               err=True)
    typer.echo(created.token)


@users_app.command("list")
def users_list(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List users with their role, token prefix and whether they are active."""
    from service.auth import service as users

    sessions = _sessions(get_settings())
    with sessions() as session:
        rows = [users.user_summary(u) for u in users.list_users(session)]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        state = "active" if row["active"] else f"revoked {row['revoked_at']}"
        typer.echo(f"{row['name']:<24} {row['role']:<10} {row['token_prefix']}…  {state}")


@users_app.command("revoke")
def users_revoke(name: str = typer.Argument(..., help="the user whose token stops working")) -> None:
    """Revoke a user's token at once (the user and their audit trail are kept)."""
    from service.auth import service as users

    sessions = _sessions(get_settings())
    with sessions() as session:
        try:
            users.revoke_user(session, name, actor="cli")
        except LookupError as exc:
            fail(str(exc.args[0]))
        except users.UserError as exc:
            fail(str(exc))
    typer.echo(f"revoked {name!r}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
