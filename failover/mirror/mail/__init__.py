"""The mirror from booking e-mails: the portal's 予約通知メール read from the clinic's mailbox.

- ``decode``: a raw mail (bytes) into sender, subject, date and body text — Japanese mail as it really
  is (ISO-2022-JP with the NEC special characters, Shift_JIS/CP932, UTF-8; base64, quoted-printable;
  text/plain preferred, text/html reduced to text). Pure, rank 0.
- ``config``: ``portals.P.mirror.mail`` (the mailbox URL, who may send, the templates), checked and
  compiled at config time.
- ``templates``: what the templates read from one decoded mail: a booking change, or why not.
- ``imap``: the mailbox, read-only (EXAMINE, ``BODY.PEEK``), over the stdlib ``imaplib`` in a thread
  of its own; IDLE when offered.
- ``watch``: the loop (rank 7, like ``failover.mirror.sync``) that reads every new mail once and
  writes its effect with the folder's last UID in one transaction.
"""
