"""A local SMTP server for the notification tests (PyPI `aiosmtpd`).

    python smtp_receiver.py OUT_DIR [LOGIN PASSWORD]

Listens on a free loopback port and prints it on the first line of stdout. Each message it
receives becomes OUT_DIR/NNNN.json: the envelope, the decoded subject, headers and plain-text
body, and the login it authenticated with. With LOGIN and PASSWORD it requires them (AUTH
PLAIN or LOGIN, allowed without TLS: it is a local test server). Runs until killed.
"""

import asyncio
import email
import json
import os
import sys
from email import policy

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

OUT = sys.argv[1]
CREDENTIALS = (sys.argv[2].encode(), sys.argv[3].encode()) if len(sys.argv) > 3 else None


class Handler:
    count = 0

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        body = message.get_body(preferencelist=("plain",))
        auth = session.auth_data if session.authenticated else None
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        record = {
            "mailFrom": envelope.mail_from,
            "rcptTos": envelope.rcpt_tos,
            "from": str(message["from"]),
            "to": str(message["to"]),
            "subject": str(message["subject"]),
            "contentType": message.get_content_type(),
            "body": body.get_content() if body is not None else "",
            "login": login,
        }
        Handler.count += 1
        path = os.path.join(OUT, "%04d.json" % Handler.count)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        os.replace(path + ".tmp", path)
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == CREDENTIALS:
        return AuthResult(success=True, auth_data=auth_data)
    return AuthResult(success=False, handled=False)


async def main():
    loop = asyncio.get_running_loop()
    options = {}
    if CREDENTIALS:
        options = dict(authenticator=authenticator, auth_required=True, auth_require_tls=False)
    server = await loop.create_server(lambda: SMTP(Handler(), **options), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
