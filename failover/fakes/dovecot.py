"""A real IMAP server for the mail source's tests and the demo: Debian's ``dovecot-imapd``, run in the foreground
with a config of its own on a loopback port, a temporary Maildir and one test user (no system service).

Dovecot refuses uid 0 for mail users, so the Maildir belongs to ``nobody``. ``deliver`` writes a mail
into ``Maildir/new`` (what a local delivery agent does): Dovecot serves it as a new message and announces
it to a client in IDLE (inotify). Mail sent by SMTP gets there through
``SmtpReceiver(deliver=dovecot.deliver)`` (``failover/fakes/receivers.py``), the portal's mail server.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER, PASSWORD = "clinic", "mail-secret-0123"
MISSING = (
    "dovecot is not installed: the mail source's tests need Debian's dovecot-imapd "
    "(apt-get install -y dovecot-imapd, or make deps-debian)"
)

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = {ssl}
{ssl_files}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{d}/mail/%u/Maildir
default_login_user = nobody
default_internal_user = nobody
default_internal_group = nogroup
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service anvil {{
  chroot =
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary() -> str:
    found = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)
    if found is None:
        raise RuntimeError(MISSING)
    return found


class Dovecot:
    """``root``: a directory of its own is made (pytest's tmp_path is 0700 under root: Dovecot's
    processes run as nobody and must reach the password file and the Maildir). ``remove()`` deletes it."""

    def __init__(self, *, cert_pem: bytes | None = None, key_pem: bytes | None = None) -> None:
        binary()
        root = Path(tempfile.mkdtemp(prefix="portalguard-dovecot-"))
        root.chmod(0o755)
        self.root = root
        self.port = free_port()
        self.imaps_port = free_port() if cert_pem else 0
        self.tls = cert_pem is not None
        self.maildir = root / "mail" / USER / "Maildir"
        self._names = itertools.count(1)
        self.proc: subprocess.Popen[bytes] | None = None
        ssl_files = ""
        if cert_pem is not None and key_pem is not None:
            (root / "cert.pem").write_bytes(cert_pem)
            (root / "key.pem").write_bytes(key_pem)
            ssl_files = f"ssl_cert = <{root}/cert.pem\nssl_key = <{root}/key.pem"
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        (root / "run").mkdir(exist_ok=True)
        (root / "state").mkdir(exist_ok=True)
        (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        self.config = root / "dovecot.conf"
        self.config.write_text(
            CONFIG.format(
                d=root,
                ssl="yes" if self.tls else "no",
                ssl_files=ssl_files,
                port=self.port,
                imaps_port=self.imaps_port,
            )
        )
        self._chown(root / "mail")

    @staticmethod
    def _chown(path: Path) -> None:
        nobody = pwd.getpwnam("nobody")
        for p in [path, *path.rglob("*")]:
            os.chown(p, nobody.pw_uid, nobody.pw_gid)

    def url(self, *, tls: bool = False, folder: str = "INBOX", password: str = PASSWORD) -> str:
        scheme, port = ("imaps", self.imaps_port) if tls else ("imap", self.port)
        return f"{scheme}://{USER}:{password}@127.0.0.1:{port}/{folder}"

    def start(self) -> Dovecot:
        self.proc = subprocess.Popen(
            [binary(), "-F", "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"dovecot exited ({self.proc.returncode}): {err} {self.log()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5) as s:
                s.settimeout(2)
                if s.recv(100).startswith(b"* OK"):
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not answer on 127.0.0.1:{self.port}: {self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def deliver(self, raw: bytes) -> Path:
        """A mail arrives: written to tmp/, then renamed into new/ (the Maildir delivery protocol)."""
        name = f"{time.time():.6f}.{os.getpid()}_{next(self._names)}.portalguard-test"
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(raw)
        nobody = pwd.getpwnam("nobody")
        os.chown(tmp, nobody.pw_uid, nobody.pw_gid)
        final = self.maildir / "new" / name
        os.rename(tmp, final)
        return final

    def files(self) -> list[Path]:
        return sorted([*(self.maildir / "new").iterdir(), *(self.maildir / "cur").iterdir()])
