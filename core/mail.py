"""Plain-text email through SMTP: the daily action digest, and later Operation Encompass notices.

Settings (``core.settings``): ``DV_SMTP_HOST`` (none: nothing is sent, ``MailNotConfigured``), ``DV_SMTP_PORT``
(25), ``DV_SMTP_USER``/``DV_SMTP_PASSWORD`` (login when a user is set), ``DV_SMTP_STARTTLS`` (1/true/yes: STARTTLS
with certificate checks before login), ``DV_MAIL_FROM``.

Addresses and the subject are checked before anything is sent: a CR or LF (or any other control character) in
them is refused with ``HeaderInjection``, so text that came from the database can never add a header or a
recipient. Only bare addresses (``name@domain``) are accepted.
"""
from __future__ import annotations

import re
import smtplib
import ssl
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from core.settings import Settings, get_settings

# Headers are folded only past RFC 5322's 998 characters: the standard policy folds a subject longer than a
# 78-character line right after "Subject:", which some readers then show with a leading space.
_POLICY = policy.default.clone(max_line_length=998)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"\\]+@[^@\s<>()\[\],;:\"\\]+\.[^@\s<>()\[\],;:\"\\]+$|"
                      r"^[^@\s<>()\[\],;:\"\\]+@localhost$")


class MailError(Exception):
    """The message could not be sent (or was refused before sending)."""


class MailNotConfigured(MailError):
    """No SMTP host is set (``DV_SMTP_HOST``): nothing is sent."""


class HeaderInjection(MailError, ValueError):
    """A subject or address holds a line break or other control character."""


def check_address(address: str) -> str:
    """``address`` stripped, or HeaderInjection / ValueError when it is not one bare email address."""
    if not isinstance(address, str):
        raise ValueError(f"Not an email address: {address!r}")
    if _CONTROL.search(address):
        raise HeaderInjection(f"Refused: a line break or control character in the address {address!r}.")
    address = address.strip()
    if not _ADDRESS.match(address):
        raise ValueError(f"Not an email address: {address!r}")
    return address


def check_subject(subject: str) -> str:
    if _CONTROL.search(subject or ""):
        raise HeaderInjection("Refused: a line break or control character in the subject.")
    if not (subject or "").strip():
        raise ValueError("The subject is empty.")
    return subject.strip()


def build_message(to: list[str], subject: str, body: str, settings: Settings | None = None) -> EmailMessage:
    """The message as it would be sent (checked; plain text, UTF-8)."""
    settings = settings or get_settings()
    if isinstance(to, str):
        to = [to]
    recipients = list(dict.fromkeys(check_address(a) for a in to))
    if not recipients:
        raise ValueError("No recipients.")
    sender = check_address(settings.mail_from)
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = check_subject(subject)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[1])
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to a scheduled job
    msg.set_content(body.replace("\r\n", "\n").replace("\r", "\n"), subtype="plain", charset="utf-8")
    return msg


def send_mail(to: list[str], subject: str, body: str, settings: Settings | None = None, *,
              timeout: float = 30) -> dict[str, tuple[int, bytes]]:
    """Send one plain-text message to ``to``. Raises MailNotConfigured without an SMTP host, HeaderInjection /
    ValueError for a bad subject or address (nothing sent), and smtplib/OS errors when the server fails (all
    recipients refused included). Returns the recipients the server refused when it accepted some of them."""
    settings = settings or get_settings()
    if not settings.smtp_host:
        raise MailNotConfigured("No SMTP host is set (DV_SMTP_HOST): nothing was sent.")
    msg = build_message(to, subject, body, settings)
    recipients = [a.strip() for a in msg["To"].split(",")]
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password or "")
        return smtp.send_message(msg, from_addr=msg["From"], to_addrs=recipients)
