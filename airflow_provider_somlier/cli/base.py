"""What every ``somlier`` command shares: the root group, messages with tokens masked, exit codes.

Exit codes: 0 done, 1 a step failed (publishing, Airflow check), 2 bad input.
Errors go to stderr. The GitHub token is read, used and never printed.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable

import click

TOKEN_ENV = "GITHUB_PERSONAL_ACCESS_TOKEN"
KST = dt.timezone(dt.timedelta(hours=9))


def yesterday_kst() -> dt.date:
    """The default first day of a generated schedule (the seed: one day before the command runs)."""
    return dt.datetime.now(KST).date() - dt.timedelta(days=1)


def say(message: str, *, err: bool = False, secrets: tuple[str, ...] = ()) -> None:
    """Print ``message`` with every GitHub token masked, on any terminal encoding."""
    from airflow_provider_somlier.generate.redact import mask_tokens

    text = mask_tokens(message, (os.environ.get(TOKEN_ENV), *secrets))
    encoding = getattr(sys.stderr if err else sys.stdout, "encoding", None) or "utf-8"
    click.echo(text.encode(encoding, "backslashreplace").decode(encoding), err=err)


def run_action(action: Callable[[], None], *, secrets: tuple[str, ...] = ()) -> None:
    """Turn SoMLier's named errors into a message on stderr and the right exit code."""
    from airflow_provider_somlier.errors import SomlierError, SomlierInputError

    try:
        action()
    except SomlierInputError as exc:
        say(f"error: {exc}", err=True, secrets=secrets)
        sys.exit(2)
    except SomlierError as exc:
        say(f"error: {exc}", err=True, secrets=secrets)
        sys.exit(1)


class TokenSafeGroup(click.Group):
    """The command group: click's own messages (usage errors quoting an argument) and
    unexpected tracebacks are printed with GitHub tokens masked, like SoMLier's own."""

    def make_context(self, *args, **kwargs) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.ClickException as exc:
            raise masked(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            raise masked(exc) from None
        except (click.exceptions.Exit, click.exceptions.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception:
            import traceback

            say(traceback.format_exc().rstrip(), err=True)
            sys.exit(1)


def masked(exc: click.ClickException) -> click.ClickException:
    from airflow_provider_somlier.generate.redact import mask_tokens

    exc.message = mask_tokens(exc.message, (os.environ.get(TOKEN_ENV),))
    return exc



@click.group(cls=TokenSafeGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """SoMLier: batch-first ML model serving on Airflow and MLflow."""

